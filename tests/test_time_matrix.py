"""The clock matrix of tests/conftest.py: that it moves the machine's clock where it says, and
that its edges are edges; and the JQL window at every instant of it, in several zones."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from connectors.jira.connector import JiraConfig, JiraConnector
from tests.conftest import DEFAULT_INSTANT, EDGES, HOURS_OF_A_WEEK, MACHINE_SKEW, clock_instants
from tests.connectors.jira.test_jira import TOKEN

UTC = timezone.utc


@pytest.mark.time_sensitive(kind="hourly")
def test_the_machine_clock_is_the_matrix_instant(clock_point):
    """A time-sensitive test that reads the real clock reads the matrix's instant, frozen."""
    _, instant = clock_point
    assert datetime.now(UTC) == instant
    assert date.today() == instant.astimezone().date()
    assert time.time() == instant.timestamp()
    assert datetime.fromtimestamp(time.time(), UTC) == instant


@pytest.mark.time_sensitive(kind="hourly")
def test_a_test_with_its_own_clock_gets_a_machine_clock_apart_from_it(clock_point, base_instant):
    index, instant = clock_point
    assert base_instant == instant
    assert datetime.now(UTC) - base_instant == (MACHINE_SKEW if index % 2 == 0 else -MACHINE_SKEW)


def test_a_test_not_named_time_sensitive_sees_the_real_clock():
    assert abs(time.time() - time.clock_gettime(time.CLOCK_REALTIME)) < 5


def test_the_matrix_covers_a_week_of_hours_and_edges_that_straddle_their_change():
    assert len(HOURS_OF_A_WEEK) == 168 and HOURS_OF_A_WEEK[0].weekday() == 0
    assert {h.weekday() for h in HOURS_OF_A_WEEK} == set(range(7))
    assert {h.hour for h in HOURS_OF_A_WEEK} == set(range(24))
    assert clock_instants("one", "hourly") == [("at-default", DEFAULT_INSTANT)]
    assert len(clock_instants("matrix", "hourly")) == 168 + len(EDGES)
    assert len(clock_instants("matrix", "edges")) == len(EDGES) < len(clock_instants("matrix", "hourly"))

    def changes(zone: str, before: str, after: str) -> bool:
        tz = ZoneInfo(zone)
        return EDGES[before].astimezone(tz).utcoffset() != EDGES[after].astimezone(tz).utcoffset()

    assert changes("Europe/Berlin", "berlin-dst-start-before", "berlin-dst-start-after")
    assert changes("Europe/Berlin", "berlin-dst-end-before", "berlin-dst-end-after")
    assert changes("America/New_York", "new-york-dst-end-before", "new-york-dst-end-after")
    assert changes("America/New_York", "new-york-dst-start-before", "new-york-dst-start-after")
    for before, after, zone in [
        ("before-midnight-utc", "after-midnight-utc", "UTC"),
        ("before-midnight-berlin", "after-midnight-berlin", "Europe/Berlin"),
        ("year-end", "new-year", "UTC"),
    ]:
        tz = ZoneInfo(zone)
        assert EDGES[after].astimezone(tz).date() == EDGES[before].astimezone(tz).date() + timedelta(days=1)
    assert EDGES["month-end"].month != (EDGES["month-end"] + timedelta(minutes=1)).month


@pytest.mark.time_sensitive(kind="hourly")
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "America/St_Johns", "Pacific/Kiritimati"])
def test_the_jql_window_reaches_back_past_the_cursor_at_every_instant(base_instant, zone):
    """Both readings of the bound (a repeated hour has two) are at or before the cursor less the
    overlap, and the window reaches back at most an hour and a minute more than that."""
    overlap = timedelta(minutes=2)
    connector = JiraConnector(
        "jira",
        JiraConfig(
            url="https://acme.atlassian.net",
            email="bot@acme.test",
            api_token=SecretStr(TOKEN),
            projects=["ENG"],
            time_zone=zone,
            overlap_minutes=2,
        ),
        sleep=lambda s: None,
        clock=lambda: base_instant,
    )
    tz = ZoneInfo(zone)
    wall = datetime.strptime(connector.jql_lower_bound(base_instant, tz), "%Y/%m/%d %H:%M")
    readings = [wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)]
    assert max(readings) <= base_instant - overlap
    assert min(readings) >= base_instant - overlap - timedelta(hours=1, minutes=1)


@pytest.mark.time_sensitive(kind="edges")
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris"])
def test_every_change_to_a_jira_issue_is_read_around_each_instant(base_instant, zone):
    """The Jira fake (JQL in the user's zone) and the connector on one clock that walks from six
    minutes before the instant to six after it, a poll every 20 seconds and a change every minute:
    each change is read by the next poll, whatever DST or the date does in between."""
    from connectors.jira.fake import JiraFake
    from syncd.sandbox.server import Sandbox

    now = [base_instant - timedelta(minutes=6)]
    fake = JiraFake(user_time_zone=zone, clock=lambda: now[0])
    with Sandbox([fake]):
        issue = fake.create_issue("ENG", "walks through the instant")
        connector = JiraConnector(
            "jira",
            JiraConfig(
                url=fake.base_url,
                email=fake.email,
                api_token=SecretStr(fake.api_token),
                projects=["ENG"],
                backfill_days=1,
                time_zone=zone,
            ),
            sleep=lambda s: None,
            clock=lambda: now[0],
        )
        cursor, missed = None, []
        for step in range(36):
            status = None
            if step % 3 == 0:
                status = "In Progress" if step % 2 == 0 else "To Do"
                fake.transition(issue, status)
            now[0] += timedelta(seconds=20)
            read = []
            for page in connector.poll(cursor):
                read.extend(page.records)
                cursor = page.cursor
            if status is not None and not any(r.state_name == status for r in read if r.ref.id == issue.id):
                missed.append(f"{status} at {now[0]:%Y-%m-%d %H:%M:%S} UTC")
    assert missed == []
