"""Rate-limit waits beyond max_wait: the HTTP layer's RateLimited, the time shown, the parking kept in the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import responses
import structlog

from connectors.linear.connector import is_rate_limited as linear_rate_limited
from syncd.errors import RateLimited, until_text
from syncd.http import HttpClient, RateHeaders, RateRule
from syncd.ratelimits import Parking, waits_in_store
from syncd.store import Store

URL = "https://svc.example.com"
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class Conn:
    """What Parking needs of a connector: its HTTP client."""

    def __init__(self, http: HttpClient):
        self.http = http


def client(name="jira", service="Jira", **kwargs) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    return HttpClient(
        name, URL, service=service, sleep=sleeps.append, wall_clock=lambda: NOW, backoff=0.01, **kwargs
    ), sleeps


def test_until_text_is_utc_rounded_up_to_the_minute_with_the_date_when_not_today():
    now = datetime(2026, 3, 4, 13, 15, tzinfo=timezone.utc)
    assert until_text(datetime(2026, 3, 4, 14, 5, tzinfo=timezone.utc), now) == "14:05 UTC"
    assert until_text(datetime(2026, 3, 4, 14, 4, 1, tzinfo=timezone.utc), now) == "14:05 UTC"
    later = datetime(2026, 3, 5, 0, 10, tzinfo=timezone(timedelta(hours=1)))  # 23:10 UTC the same day
    assert until_text(later, now) == "23:10 UTC"
    assert until_text(datetime(2026, 3, 5, 0, 10, tzinfo=timezone.utc), now) == "2026-03-05 00:10 UTC"


@responses.activate
def test_a_retry_after_beyond_max_wait_is_not_slept_but_raised_with_its_instant():
    responses.add(responses.GET, f"{URL}/rest/api/3/myself", status=429, headers={"Retry-After": "3600"})
    http, sleeps = client(max_wait=120)
    with pytest.raises(RateLimited) as err:
        http.request_json("GET", "/rest/api/3/myself")
    assert err.value.until == datetime.fromtimestamp(NOW + 3600, timezone.utc) and sleeps == []
    assert "Jira's rate limit" in str(err.value) and not err.value.maybe_applied
    with pytest.raises(RateLimited):
        http.request_json("GET", "/rest/api/3/myself")
    assert len(responses.calls) == 1  # nothing sent before the end


@responses.activate
def test_a_retry_after_within_max_wait_is_slept_as_before():
    responses.add(responses.GET, f"{URL}/x", status=429, headers={"Retry-After": "7"})
    responses.add(responses.GET, f"{URL}/x", json={})
    http, sleeps = client(max_wait=120)
    assert http.request_json("GET", "/x") == {}
    assert sleeps == [7.0]


@responses.activate
def test_linear_ratelimited_in_the_body_parks_until_the_requests_reset():
    reset_ms = int((NOW + 1800) * 1000)
    responses.add(
        responses.POST,
        f"{URL}/graphql",
        status=400,
        json={"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]},
        headers={"X-RateLimit-Requests-Remaining": "0", "X-RateLimit-Requests-Reset": str(reset_ms)},
    )
    http, sleeps = client(
        "linear",
        "Linear",
        rate_rule=RateRule(matches=linear_rate_limited),
        rate_headers=RateHeaders(remaining="X-RateLimit-Requests-Remaining", reset="X-RateLimit-Requests-Reset"),
    )
    with pytest.raises(RateLimited) as err:
        http.request_json("POST", "/graphql", json={"query": "{ viewer { id } }"}, expect=(400,))
    assert err.value.until.timestamp() == NOW + 1800 and sleeps == []


def test_parking_logs_once_per_wait_keeps_it_in_the_store_and_a_new_process_honours_it(tmp_path):
    now = [datetime(2026, 3, 4, 13, 15, tzinfo=timezone.utc)]
    until = datetime(2026, 3, 4, 14, 5, tzinfo=timezone.utc)
    http, _ = client("github", "GitHub")
    store = Store(tmp_path / "s.db", clock=lambda: now[0])
    try:
        parking = Parking(store, {"github": Conn(http)}, lambda: now[0])
        heard = []
        parking.listeners.append(lambda wait, seconds, begun: heard.append((seconds, begun)))
        exc = RateLimited("github", "limited", until=until, service="GitHub")
        with structlog.testing.capture_logs() as logs:
            parking.park(exc)
            parking.park(exc)  # the same wait, met again: no second line
        assert [e["event"] for e in logs] == ["waiting for GitHub's rate limit until 14:05 UTC"]
        assert heard == [(3000.0, True)]
        assert parking.until("github") == until
        assert {n: w.until for n, w in waits_in_store(store, now[0]).items()} == {"github": until}
    finally:
        store.close()

    fresh, _ = client("github", "GitHub")
    store = Store(tmp_path / "s.db", clock=lambda: now[0])
    try:
        again = Parking(store, {"github": Conn(fresh)}, lambda: now[0])
        assert again.until("github") == until
        assert fresh.blocked_until == until.timestamp()  # its HTTP client sends nothing before then
        now[0] = until
        assert again.until("github") is None and waits_in_store(store, now[0]) == {}
    finally:
        store.close()
