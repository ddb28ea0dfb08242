"""Escalation across a SIGKILL: ``syncd run`` dies after the create landed, before it was recorded.

The tracker fake applies the create and then kills the daemon before
answering, so the issue exists but the outbox still says 'sending'. The
restarted daemon must find the issue by its marker (``find_created``) instead
of creating a second one, link the ticket to it and write one "Linked" note.
The same for the follow-up ticket opened for a closed ticket
(``find_follow_up``). Real processes, real time: the test waits on the
daemon with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.store import Store
from tests.e2e.test_crash import kill_on, run_once
from tests.e2e.test_escalation_trackers import (
    PRIVATE_REPO,
    STAGE_PREFIX,
    TRACKERS,
    complete_ticket,
    linked_notes,
    tracker_mappings,
)

pytestmark = pytest.mark.e2e

DEADLINE = 20.0  # seconds a daemon gets to do what the test waits for


@contextmanager
def daemon(pg: Playground, on_start=None):
    """``syncd run`` against the playground; stopped with SIGTERM (or found dead) on the way out."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run"],
        env=pg.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if on_start:
        on_start(proc)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def wait_for(proc: subprocess.Popen, predicate, what: str):
    """Wait (with a deadline) until ``predicate()`` holds while the daemon works."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
            _, err = proc.communicate()
            raise AssertionError(f"syncd run exited ({proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {DEADLINE} s waiting for {what}")


def outbox_drained(pg: Playground) -> bool:
    """Nothing left to send (read beside the running daemon)."""
    store = Store(pg.store_path, readonly=True)
    try:
        counts = store.outbox_counts()
    finally:
        store.close()
    return counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err[-2000:]


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=tracker_mappings(tmp_path)) as playground:
        code, _, err = run_once(playground)  # the first sync of the seeded desk, uninterrupted
        assert code == 0, err
        yield playground


# Per tracker: the route tag, the create request's predicate, and the issues the fake holds.
def _github_create(endpoint, request):
    return request.method == "POST" and request.path == f"/repos/{PRIVATE_REPO}/issues"


def _jira_create(endpoint, request):
    return request.method == "POST" and request.path == "/rest/api/3/issue"


def _linear_create(endpoint, request):
    return "IssueCreate" in endpoint


CASES = {
    "github": ("billing", _github_create, lambda pg: {str(i.id): i.title for i in pg.github.issues.values()}),
    "jira": ("platform", _jira_create, lambda pg: {i.id: i.summary for i in pg.jira.issues.values()}),
    "linear": ("export", _linear_create, lambda pg: {i["id"]: i["title"] for i in pg.linear.issues.values()}),
}


@pytest.mark.parametrize("tracker", sorted(CASES))
def test_killed_after_the_create_landed_finds_the_issue_instead_of_creating_another(pg, tracker):
    tag, is_create, issues_of = CASES[tracker]
    subject = f"Crash drill for {tracker}: exports stall"
    before = set(issues_of(pg))
    ticket = complete_ticket(pg, subject, tag=tag)

    start, holder = kill_on(
        pg, tracker, lambda endpoint, request: is_create(endpoint, request) and subject.encode() in request.body
    )
    with daemon(pg, start) as proc:
        wait_for(proc, lambda: holder.get("done"), "the create request")
        proc.wait(timeout=DEADLINE)
        assert proc.returncode == -signal.SIGKILL
    created = set(issues_of(pg)) - before
    assert len(created) == 1  # it landed before the kill
    assert linked_notes(pg, ticket) == []  # ...and syncd never learnt of it

    with daemon(pg) as proc:
        wait_for(proc, lambda: linked_notes(pg, ticket), "the ticket's Linked note")
        wait_for(
            proc,
            lambda: pg.zendesk.field_value(ticket, pg.seed.stage_field_id) == "assigned",
            "the ticket to show Assigned",
        )
        wait_for(proc, lambda: outbox_drained(pg), "the outbox to drain")
        stop(proc)

    assert set(issues_of(pg)) - before == created  # exactly one issue, the one created before the kill
    [issue_id] = created
    assert len(linked_notes(pg, ticket)) == 1
    assert f"{STAGE_PREFIX}assigned" in pg.zendesk.ticket(ticket)["tags"]
    app = pg.app()
    try:
        links = app.store.links_for_ticket(Ref("zendesk", str(ticket)))
        assert [(r.issue.connector, r.issue.id, r.origin) for r in links] == [(tracker, issue_id, "escalation")]
        delivered = [
            e
            for e in app.store.history(Ref("zendesk", str(ticket)))
            if e.kind == "delivered" and e.detail.get("op") == "issue.create"
        ]
        assert [e.summary for e in delivered] == ["found already written (after an interruption)"]
    finally:
        app.close()


def _followup_of(ticket: int):
    def is_create(endpoint, request) -> bool:
        if request.method != "POST" or request.path != "/api/v2/tickets":
            return False
        body = json.loads(request.body or b"{}")
        return (body.get("ticket") or {}).get("via_followup_source_id") == ticket

    return is_create


def followups_of(pg: Playground, ticket: int) -> list[dict]:
    return [
        t
        for t in pg.zendesk.tickets.values()
        if ((t.get("via") or {}).get("source") or {}).get("from", {}).get("ticket_id") == ticket
    ]


def test_killed_after_the_followup_ticket_landed_finds_it_instead_of_opening_another(pg):
    """A closed ticket's linked work ships: the follow-up ticket is opened once across a SIGKILL."""
    zendesk = pg.zendesk
    requester = pg.seed.customers["hannah@northwind.example"]
    ticket = zendesk.create_ticket(
        "Monthly export times out",
        "The full-month CSV export fails after 30 s.",
        requester_id=requester,
        status="open",
        assignee_id=pg.seed.agents["Priya Raman"],
        organization_id=zendesk.users[requester]["organization_id"],
        custom_fields={pg.seed.severity_field_id: "sev3"},
    )["id"]
    pg.agent_note(ticket, f"Known problem: {pg.seed.identifiers['csv']}")
    code, _, err = run_once(pg)  # the handoff: linked, promises made
    assert code == 0, err
    pg.agent_set_status(ticket, "solved")
    zendesk.close_ticket(ticket)
    code, _, err = run_once(pg)
    assert code == 0, err
    pg.engineer_move(pg.seed.identifiers["csv"], "Done")

    start, holder = kill_on(pg, "zendesk", _followup_of(ticket))
    with daemon(pg, start) as proc:
        wait_for(proc, lambda: holder.get("done"), "the follow-up ticket's create")
        proc.wait(timeout=DEADLINE)
        assert proc.returncode == -signal.SIGKILL
    [followup] = followups_of(pg, ticket)  # it landed before the kill

    source, new_ref = Ref("zendesk", str(ticket)), Ref("zendesk", str(followup["id"]))

    def followed_up():
        store = Store(pg.store_path, readonly=True)
        try:
            return store.get_meta(source).get("followup_ticket")
        finally:
            store.close()

    with daemon(pg) as proc:
        wait_for(proc, followed_up, "the follow-up ticket to be recorded")
        wait_for(proc, lambda: outbox_drained(pg), "the outbox to drain")
        stop(proc)

    assert [t["id"] for t in followups_of(pg, ticket)] == [followup["id"]]  # exactly one follow-up
    first = zendesk.ticket_comments(followup["id"])[0]
    assert not first["public"] and "We promised the customer" in first["body"]
    app = pg.app()
    try:
        assert app.store.promises_for_ticket(new_ref)  # the promises moved over
        assert [r.issue for r in app.store.links_for_ticket(new_ref)] == [
            r.issue for r in app.store.links_for_ticket(source)
        ]
        assert app.store.get_meta(source).get("followup_ticket") == str(followup["id"])
        delivered = [
            e for e in app.store.history(source) if e.kind == "delivered" and e.detail.get("op") == "ticket.followup"
        ]
        assert [e.summary for e in delivered] == ["found already written (after an interruption)"]
    finally:
        app.close()
    assert zendesk.ticket(ticket)["status"] == "closed"
