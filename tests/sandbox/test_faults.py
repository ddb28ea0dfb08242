"""Every fault kind the sandbox injects, observed from a client over real HTTP."""

from __future__ import annotations

import pytest
import requests

from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
from syncd.http import HttpClient
from syncd.sandbox.server import FAULT_KINDS, Sandbox

AUTH = (f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN)
ME = "/api/v2/users/me"


@pytest.fixture
def sandbox():
    zendesk = ZendeskFake(seed=3)
    zendesk.customer = zendesk.add_user("C", "c@example.com")
    linear = LinearFake(seed=3)
    linear.add_team("ENG", "Engineering")
    with Sandbox([zendesk, linear]) as sb:
        yield sb


def get(sb: Sandbox, path: str = ME, **kwargs) -> requests.Response:
    return requests.get(sb.url("zendesk") + path, auth=AUTH, timeout=kwargs.pop("timeout", 5), **kwargs)


def test_the_fault_kinds_are_the_ones_tested_here():
    assert set(FAULT_KINDS) == {
        "429",
        "500",
        "502",
        "503",
        "timeout",
        "reset",
        "truncate",
        "non_json",
        "wrong_shape",
        "latency",
    }


def test_429_carries_retry_after(sandbox):
    sandbox["zendesk"].inject("429", "GET /api/v2/users/me", count=1, retry_after=7)
    r = get(sandbox)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert get(sandbox).status_code == 200


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_errors(sandbox, kind):
    sandbox["zendesk"].inject(kind, count=1)
    r = get(sandbox)
    assert r.status_code == int(kind)
    assert ("Retry-After" in r.headers) == (kind == "503")


def test_timeout_applies_the_write_then_leaves_the_client_waiting(sandbox):
    zd = sandbox["zendesk"]
    tid = zd.create_ticket("s", "d", requester_id=zd.customer["id"])["id"]
    zd.inject("timeout", r"PUT /api/v2/tickets/\{id\}$", count=1, delay=0.5)
    with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        requests.put(
            f"{zd.base_url}/api/v2/tickets/{tid}", auth=AUTH, timeout=0.2, json={"ticket": {"status": "pending"}}
        )
    assert zd.ticket(tid)["status"] == "pending"  # the write landed: a retry must check first


def test_reset_drops_the_connection(sandbox):
    sandbox["zendesk"].inject("reset", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(sandbox)
    assert get(sandbox).status_code == 200


def test_truncate_cuts_the_body_short(sandbox):
    sandbox["zendesk"].inject("truncate", count=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        get(sandbox).json()


def test_non_json_answers_an_html_page(sandbox):
    sandbox["zendesk"].inject("non_json", count=1)
    r = get(sandbox)
    with pytest.raises(ValueError):
        r.json()
    assert r.text.startswith("<html>")


def test_wrong_shape_keeps_keys_but_not_types(sandbox):
    sandbox["zendesk"].inject("wrong_shape", count=1)
    assert get(sandbox).json() == {"user": "?"}


def test_latency_delays_but_answers(sandbox):
    rule = sandbox["zendesk"].inject("latency", count=1, delay=0.05)
    assert get(sandbox).status_code == 200
    assert rule.fired == 1


def test_rate_fires_on_a_share_of_requests(sandbox):
    sandbox["zendesk"].inject("500", rate=0.5)
    statuses = [get(sandbox).status_code for _ in range(30)]
    assert 0 < statuses.count(500) < 30 and statuses.count(200) == 30 - statuses.count(500)


def test_count_caps_how_often_a_rule_fires_and_every_request_is_counted(sandbox):
    zd = sandbox["zendesk"]
    rule = zd.inject("503", "GET /api/v2/users/me", count=2)
    assert [get(sandbox).status_code for _ in range(3)] == [503, 503, 200]
    assert rule.fired == 2
    assert get(sandbox, "/api/v2/ticket_fields").status_code == 200  # another endpoint is untouched
    assert zd.counts["GET /api/v2/users/me"] == 3 and zd.total_requests() == 4
    zd.clear_faults()
    zd.reset_counts()
    assert zd.total_requests() == 0


def test_faults_can_target_one_graphql_operation(sandbox):
    linear = sandbox["linear"]
    linear.inject("429", "POST /graphql SyncdComment$", count=1)

    def post(query: str) -> requests.Response:
        return requests.post(
            sandbox.url("linear") + "/graphql",
            json={"query": query},
            headers={"Authorization": SANDBOX_API_KEY},
            timeout=5,
        )

    assert post("query SyncdIssues { issues { nodes { id } } }").status_code == 200
    assert (
        post('mutation SyncdComment { commentCreate(input: {issueId: "x", body: "b"}) { success } }').status_code == 429
    )
    assert linear.counts["POST /graphql SyncdComment"] == 1


def test_the_project_http_client_rides_out_injected_faults(sandbox):
    zd = sandbox["zendesk"]
    zd.inject("429", "GET /api/v2/users/me", count=1, retry_after=30)
    zd.inject("non_json", "GET /api/v2/users/me", count=1)
    waits: list[float] = []
    client = HttpClient("zendesk", zd.base_url, auth=AUTH, sleep=waits.append, backoff=0.01)
    try:
        body = client.request_json("GET", ME)
    finally:
        client.close()
    assert body["user"]["email"] == SANDBOX_EMAIL
    assert zd.counts["GET /api/v2/users/me"] == 3
    assert 30 in waits  # Retry-After was honoured (through the injected sleep, not a real one)
