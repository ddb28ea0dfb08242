"""Escalation across a SIGKILL: ``syncd run`` dies after the create landed, before it was recorded.

The tracker fake applies the create and then kills the daemon before
answering, so the issue exists but the outbox still says 'sending'. The
restarted daemon must find the issue by its marker (``find_created``) instead
of creating a second one, link the ticket to it and write one "Linked" note.
The same for the follow-up ticket opened for a closed ticket
(``find_followup``). Real processes, real time: the test waits on the
daemon with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

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
from tests.e2e.test_escalation_trackers import (JIRA_PROJECT, PRIVATE_REPO, STAGE_PREFIX, TRACKERS,
                                                complete_ticket, linked_notes, tracker_mappings)

pytestmark = pytest.mark.e2e

DEADLINE = 20.0  # seconds a daemon gets to do what the test waits for


@contextmanager
def daemon(pg: Playground, on_start=None):
    """``syncd run`` against the playground; stopped with SIGTERM (or found dead) on the way out."""
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "run"], env=pg.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    start, holder = kill_on(pg, tracker, lambda endpoint, request: is_create(endpoint, request)
                            and subject.encode() in request.body)
    with daemon(pg, start) as proc:
        wait_for(proc, lambda: holder.get("done"), "the create request")
        proc.wait(timeout=DEADLINE)
        assert proc.returncode == -signal.SIGKILL
    created = set(issues_of(pg)) - before
    assert len(created) == 1  # it landed before the kill
    assert linked_notes(pg, ticket) == []  # ...and syncd never learnt of it

    with daemon(pg) as proc:
        wait_for(proc, lambda: linked_notes(pg, ticket), "the ticket's Linked note")
        wait_for(proc, lambda: pg.zendesk.field_value(ticket, pg.seed.stage_field_id) == "assigned",
                 "the ticket to show Assigned")
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
        delivered = [e for e in app.store.history(Ref("zendesk", str(ticket))) if e.kind == "delivered"
                     and e.detail.get("op") == "issue.create"]
        assert [e.summary for e in delivered] == ["found already written (after an interruption)"]
    finally:
        app.close()
