"""A private GitHub repository turns public: what syncd wrote there is rewritten in that cycle.

Through the sandbox, with the shipped example mappings and a route to a
PRIVATE repository: a complete flagged ticket creates an issue carrying the
whole handoff record, the demand comment names the customer, the
linked-tickets comment shows the ticket's subject. Then the repository turns
public. Within the cycle that reads the new visibility every text syncd
wrote there is opaque; a text a person edited since is left alone and the
ticket is told once; a crash in the middle of the rewrite leaves no customer
name and no duplicate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import generate_latest

from connectors.base import find_markers
from mappings.planner import opaque_ref
from syncd.daemon import Daemon
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox
from tests.e2e.handoff_support import MondayClock
from tests.e2e.test_escalation_trackers import (
    PRIVATE_REPO,
    TRACKERS,
    complete_ticket,
    customer_details,
    cycle,
    rendered,
    tracker_mappings,
)

pytestmark = pytest.mark.e2e

SUBJECT = "Invoice export drops the VAT column"


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    sandbox = build_sandbox(clock=clock, trackers=TRACKERS)
    # The repository's visibility is read on every poll (the default is once an hour, and before every write).
    with Playground(
        tmp_path / "work",
        sandbox=sandbox,
        trackers=TRACKERS,
        mappings=tracker_mappings(tmp_path),
        tracker_options={"github": "visibility_ttl = 0"},
    ) as playground:
        yield playground


@pytest.fixture
def app(pg, clock):
    app = pg.app(clock=clock)
    assert app.engine.cycle().ok
    yield app
    app.close()


def escalate(pg, app, clock):
    """An escalated ticket with its issue in the private repository, the demand and context comments settled."""
    before = {i.id for i in pg.github.issues.values()}
    ticket = complete_ticket(pg, SUBJECT, tag="billing")
    cycle(app, clock)
    cycle(app, clock)
    [issue] = [i for i in pg.github.issues.values() if i.id not in before]
    assert issue.repo.full_name == PRIVATE_REPO
    return ticket, issue


def texts(pg, issue) -> list[str]:
    return [issue.title, issue.body, *(c.body for c in pg.github.comments_of(issue))]


def leaks(pg, ticket: int, issue) -> list[tuple[str, str]]:
    """Customer details readable in anything on the issue."""
    everything = rendered("\n".join(texts(pg, issue))).lower()
    found = [(what, d) for what, d in customer_details(pg, ticket).items() if d.lower() in everything]
    if "@" in everything.replace("<!--", ""):
        found.append(("e-mail", "@"))
    return found


def syncd_comments(pg, issue, slot: str) -> list:
    return [c for c in pg.github.comments_of(issue) if f"<!-- syncd:{slot} -->" in c.body]


def kept_notes(pg, ticket: int) -> list[str]:
    return [
        c["body"]
        for c in pg.zendesk.ticket_comments(ticket)
        if not c["public"] and find_markers(c["body"]) and "is now publicly visible" in c["body"]
    ]


def test_every_text_syncd_wrote_is_made_opaque_in_the_cycle_that_reads_the_repository_public(pg, app, clock):
    ticket, issue = escalate(pg, app, clock)
    assert ("organisation", "Northwind Logistics") in leaks(pg, ticket, issue)  # private: the whole record
    assert len(syncd_comments(pg, issue, "demand")) == 1 and len(syncd_comments(pg, issue, "context")) == 1
    assert SUBJECT in syncd_comments(pg, issue, "context")[0].body
    comment_ids = sorted(c.id for c in pg.github.comments_of(issue))

    pg.github.set_visibility(PRIVATE_REPO, "public")
    cycle(app, clock)

    assert leaks(pg, ticket, issue) == []
    ref = Ref("zendesk", str(ticket))
    assert opaque_ref(ref) in issue.title and opaque_ref(ref) in rendered(issue.body)
    assert "Linked support tickets: 1" in syncd_comments(pg, issue, "context")[0].body
    assert "Support demand: 1 ticket(s) from 1 organisation(s)" in syncd_comments(pg, issue, "demand")[0].body
    assert sorted(c.id for c in pg.github.comments_of(issue)) == comment_ids  # edited in place, none added
    assert find_markers(issue.body)  # the create's marker stays: find_created still finds the issue
    assert kept_notes(pg, ticket) == []

    # From then on every write there is opaque: a second ticket joins, the demand comment counts it.
    pg.agent_note(pg.seed.tickets["slack"], f"also {PRIVATE_REPO}#{issue.number}")
    cycle(app, clock)
    cycle(app, clock)
    assert "Support demand: 2 ticket(s)" in syncd_comments(pg, issue, "demand")[0].body
    assert leaks(pg, ticket, issue) == [] and leaks(pg, pg.seed.tickets["slack"], issue) == []
    assert not [r for r in app.store.list_outbox("dead")]


def test_a_comment_a_person_edited_is_left_alone_the_ticket_is_told_once_and_metrics_count_it(pg, app, clock):
    ticket, issue = escalate(pg, app, clock)
    [demand] = syncd_comments(pg, issue, "demand")
    clock.advance()
    edited = demand.body.replace("Support demand", "Support demand (ask Priya about Northwind Logistics)")
    pg.github.edit_comment(demand, edited, user="ada-novak")

    daemon = Daemon(pg.settings, lambda settings: app, sleep=lambda s: None)
    pg.github.set_visibility(PRIVATE_REPO, "public")
    clock.advance()
    daemon.step()

    assert demand.body == edited  # the person's text stays as they wrote it
    assert "Northwind" not in rendered(syncd_comments(pg, issue, "context")[0].body)
    assert "Northwind" not in rendered(issue.body) and SUBJECT not in issue.title
    [note] = kept_notes(pg, ticket)
    assert f"{PRIVATE_REPO}#{issue.number}" in note and "the demand comment" in note
    assert str(demand.id) in note  # the link to the comment left as it was
    assert "edited by ada-novak" in note  # GitHub's GraphQL names who edited it
    metrics = generate_latest(daemon.metrics.registry).decode()
    assert "syncd_privacy_rewrite_skipped_total 1.0" in metrics
    assert "syncd_privacy_rewritten_total 3.0" in metrics  # context comment, issue title, description

    for _ in range(2):
        clock.advance()
        daemon.step()
    assert len(kept_notes(pg, ticket)) == 1  # told once
    assert demand.body == edited


CHILD = textwrap.dedent("""
    import os, sys
    from datetime import datetime
    from syncd.app import build_app
    from syncd.config import load_config
    from connectors.github.connector import GitHubConnector

    settings = load_config(sys.argv[1], env=dict(os.environ))
    now = datetime.fromisoformat(sys.argv[2])  # the test's clock, not the machine's
    app = build_app(settings, sleep=lambda s: None, clock=lambda: now)
    original = GitHubConnector._write
    count = {"n": 0}

    def write(self, method, path, body, *args, **kwargs):
        if method == "PATCH":
            count["n"] += 1
            if count["n"] == 2:  # the first rewrite landed: die before the second goes out
                sys.stdout.write("killing\\n"); sys.stdout.flush()
                os.kill(os.getpid(), 9)
        return original(self, method, path, body, *args, **kwargs)

    GitHubConnector._write = write
    app.engine.cycle()
""")


def test_a_crash_in_the_middle_of_the_rewrite_leaves_no_customer_name_and_no_duplicate(pg, app, clock, tmp_path):
    ticket, issue = escalate(pg, app, clock)
    comment_ids = sorted(c.id for c in pg.github.comments_of(issue))
    app.close()
    pg.github.set_visibility(PRIVATE_REPO, "public")

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**pg.cli_env(), "PYTHONPATH": os.getcwd()}
    clock.advance()
    done = subprocess.run(
        [sys.executable, str(script), str(pg.config_path), clock().isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert leaks(pg, ticket, issue)  # killed half-way: something still names the customer

    clock.advance()
    again = pg.app(clock=clock)
    try:
        [row] = [r for r in again.store.list_outbox() if r.op == "issue.make_opaque"]
        assert row.state == "sending"  # the rewrite was under way
        assert again.engine.cycle().ok
        assert leaks(pg, ticket, issue) == []
        assert sorted(c.id for c in pg.github.comments_of(issue)) == comment_ids  # nothing added
        assert [r.state for r in again.store.list_outbox() if r.op == "issue.make_opaque"] == ["done"]
        assert kept_notes(pg, ticket) == []  # syncd's own rewrite is not taken for a person's edit
    finally:
        again.close()
