"""Crash safety with a real process: SIGKILL after a write was sent, before it was recorded.

The sandbox applies the write, then kills the ``syncd once`` process before
answering, so the write has landed but syncd never learns it did. The next
run must find the write's marker and not send it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from connectors.base import find_markers
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


def run_once(pg: Playground, on_start=None) -> subprocess.CompletedProcess | int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "once"],
        env=pg.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if on_start:
        on_start(proc)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def kill_on(pg: Playground, service: str, predicate):
    """Kill the syncd process the moment ``service`` has applied a matching request."""
    holder = {}

    def listener(endpoint, request, response):
        if "proc" in holder and not holder.get("done") and predicate(endpoint, request):
            holder["done"] = True
            os.kill(holder["proc"].pid, signal.SIGKILL)

    pg.sandbox[service].listeners.append(listener)
    return lambda proc: holder.__setitem__("proc", proc), holder


def bulk_ids(request) -> list[int]:
    """The tickets an Update Many with a body per ticket writes."""
    return [t.get("id") for t in json.loads(request.body or b"{}").get("tickets") or []]


def test_killed_after_a_ticket_note_was_sent_does_not_send_it_again(tmp_path):
    with Playground(tmp_path) as pg:
        ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
        pg.agent_note(ticket, f"engineering has this as {key}")
        target = f"/api/v2/tickets/{ticket}"
        start, holder = kill_on(
            pg,
            "zendesk",
            lambda endpoint, request: (
                request.method == "PUT"
                and b"syncd:" in request.body
                and (request.path == target or (request.path.endswith("/update_many") and ticket in bulk_ids(request)))
            ),
        )
        code, out, err = run_once(pg, start)
        assert holder.get("done"), "the write was never sent"
        assert code == -signal.SIGKILL
        notes = [c for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
        assert len(notes) == 1  # it landed before the kill

        code, out, err = run_once(pg)
        assert code == 0, err
        code, out, err = run_once(pg)
        assert code == 0, err
        notes = [c for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
        assert len(notes) == 1, [n["body"] for n in notes]
        assert "syncd_linked" in pg.zendesk.ticket(ticket)["tags"]


def test_killed_after_a_linear_attachment_was_sent_does_not_duplicate_it(tmp_path):
    with Playground(tmp_path) as pg:
        ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
        pg.agent_note(ticket, f"same as {key}")
        start, holder = kill_on(
            pg,
            "linear",
            # alone or in a batch of several writes (SyncdWrites)
            lambda endpoint, request: (
                ("AttachmentCreate" in endpoint or "SyncdWrites" in endpoint)
                and pg.zendesk.agent_url(ticket).encode() + b'"' in request.body
            ),
        )
        code, _, _ = run_once(pg, start)
        assert holder.get("done") and code == -signal.SIGKILL
        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        urls = [a["url"] for a in pg.linear.issue(key)["attachments"]]
        assert urls.count(pg.zendesk.agent_url(ticket)) == 1
        notes = [c for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
        assert len(notes) == 1


def test_killed_at_the_first_write_of_a_busy_first_run_delivers_everything_once(tmp_path):
    """The first run commits a page of links and actions, then dies on its first write."""
    with Playground(tmp_path) as pg:
        pg.agent_note(pg.seed.tickets["slack"], f"see {pg.seed.identifiers['webhook']}")
        start, holder = kill_on(pg, "zendesk", lambda endpoint, request: request.method == "PUT")
        code, _, _ = run_once(pg, start)
        assert holder.get("done") and code == -signal.SIGKILL
        code, _, err = run_once(pg)
        assert code == 0, err
        app = pg.app()
        try:
            links = app.store.all_links()
            assert len(links) == 9
            for link in links:
                notes = [
                    c
                    for c in pg.zendesk.ticket_comments(int(link.ticket.id))
                    if find_markers(c["body"]) and c["body"].startswith("Linked to")
                ]
                assert len(notes) == 1, (link, [n["body"] for n in notes])
            assert app.store.outbox_counts().get("pending", 0) == 0
        finally:
            app.close()


def test_killed_after_a_batch_of_linear_writes_was_sent_finds_them_all_and_sends_none_again(tmp_path):
    """Several attachments go out in one document; the process dies once Linear applied
    it. The next run looks for the batch's markers in one request and sends none again."""
    with Playground(tmp_path) as pg:
        start, holder = kill_on(pg, "linear", lambda endpoint, request: endpoint == "POST /graphql SyncdWrites")
        code, _, _ = run_once(pg, start)
        assert holder.get("done"), "no batch of Linear writes was sent"
        assert code == -signal.SIGKILL
        attached = {
            key: [a["url"] for a in pg.linear.issue(key)["attachments"]] for key in pg.seed.identifiers.values()
        }
        batch = sum(len(urls) for urls in attached.values())
        assert batch >= 2  # a batch landed before the kill

        pg.sandbox.reset_counts()
        code, _, err = run_once(pg)
        assert code == 0, err
        linear = pg.sandbox.counts()["linear"]
        assert linear.get("POST /graphql SyncdFindMarkers") == 1, linear
        code, _, err = run_once(pg)
        assert code == 0, err
        for key in pg.seed.identifiers.values():
            urls = [a["url"] for a in pg.linear.issue(key)["attachments"]]
            assert len(urls) == len(set(urls)), (key, urls)
            assert set(attached[key]) <= set(urls)
        app = pg.app()
        try:
            counts = app.store.outbox_counts()
            assert counts["pending"] == counts["sending"] == counts["dead"] == 0, counts
            found = [a for a in app.store.list_outbox("done", limit=1000) if (a.result or {}).get("found_marker")]
            assert len(found) == batch
        finally:
            app.close()


def test_killed_in_the_middle_of_a_batch_of_notes_sends_none_of_them_twice(tmp_path):
    """Update Many landed (every ticket of the batch has its note), then the process
    died before the job's answer: each ticket's marker is found, nothing is sent again,
    and the batch's tickets not written yet still get their notes."""
    with Playground(tmp_path) as pg:
        for name in ("slack", "vat", "search"):
            pg.agent_note(pg.seed.tickets[name], f"see {pg.seed.identifiers['webhook']}")
        batches: list[list[int]] = []
        pg.sandbox["zendesk"].listeners.append(
            lambda endpoint, request, response: (
                batches.append(bulk_ids(request))
                if request.method == "PUT" and request.path.endswith("/update_many")
                else None
            )
        )
        start, holder = kill_on(
            pg,
            "zendesk",
            lambda endpoint, request: request.method == "PUT" and len(bulk_ids(request)) >= 2,
        )
        code, _, _ = run_once(pg, start)
        assert holder.get("done") and code == -signal.SIGKILL, "no batch of notes was sent"
        landed = batches[-1]
        assert len(landed) >= 2
        for tid in landed:  # the batch landed before the kill: one note each, a marker each
            notes = [c for c in pg.zendesk.ticket_comments(tid) if find_markers(c["body"])]
            assert len(notes) == 1

        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        app = pg.app()
        try:
            links = app.store.all_links()
            assert {int(link.ticket.id) for link in links} >= set(landed)
            for link in links:
                notes = [
                    c
                    for c in pg.zendesk.ticket_comments(int(link.ticket.id))
                    if find_markers(c["body"]) and c["body"].startswith("Linked to")
                ]
                assert len(notes) == 1, (link, [n["body"] for n in notes])
                markers = [m for c in notes for m in find_markers(c["body"])]
                assert len(set(markers)) == len(markers)
            assert app.store.outbox_counts().get("pending", 0) == 0
            assert app.store.outbox_counts().get("sending", 0) == 0
        finally:
            app.close()


def test_killed_after_a_batch_with_demand_comments_was_sent_makes_none_twice(tmp_path):
    """With the handoff on, the demand comments are created in the batched SyncdWrites
    (no look first: the feed saw none). The process dies once Linear applied a batch
    holding such creates; the next run finds them by their markers and the issues
    keep one demand comment each, also when the demand changes afterwards."""
    from tests.e2e.handoff_support import copy_examples

    slot = "<!-- syncd:demand -->"

    def demand_creates(endpoint, request) -> bool:
        body = (request.body or b"").decode() if isinstance(request.body, bytes) else str(request.body or "")
        return endpoint == "POST /graphql SyncdWrites" and "commentCreate" in body and slot in body

    def demand_comments(pg: Playground) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in pg.linear.comments.values():
            if slot in c["body"] and c["userId"] == pg.linear.api_user["id"]:
                out.setdefault(c["issueId"], []).append(c["id"])
        return out

    with Playground(tmp_path / "work", trackers=("linear",), mappings=copy_examples(tmp_path)) as pg:
        start, holder = kill_on(pg, "linear", demand_creates)
        code, _, _ = run_once(pg, start)
        assert holder.get("done"), "no batch with a demand comment's create was sent"
        assert code == -signal.SIGKILL
        landed = demand_comments(pg)
        assert landed and all(len(ids) == 1 for ids in landed.values())

        pg.sandbox.reset_counts()
        code, _, err = run_once(pg)
        assert code == 0, err
        linear = pg.sandbox.counts()["linear"]
        assert linear.get("POST /graphql SyncdFindMarkers", 0) >= 1, linear  # the interrupted batch, looked for
        after = demand_comments(pg)
        assert all(len(ids) == 1 for ids in after.values()), after
        assert {i: ids for i, ids in after.items() if i in landed} == landed

        # The demand of a landed one changes: the same comment is edited (the store knows it was
        # written, not its id: looked for once), never a second one made.
        issue_id = sorted(landed)[0]
        identifier = pg.linear.issue(issue_id)["identifier"]
        customer = next(iter(pg.seed.customers.values()))
        pg.zendesk.create_ticket("Same here", f"We see {identifier} too.", requester_id=customer, status="open")
        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        final = demand_comments(pg)
        assert all(len(ids) == 1 for ids in final.values()), final
        assert final[issue_id] == landed[issue_id]
        app = pg.app()
        try:
            found = [a for a in app.store.list_outbox("done", limit=5000) if (a.result or {}).get("found_marker")]
            assert any(a.op == "issue.upsert_comment" for a in found), "no demand comment was found by its marker"
            counts = app.store.outbox_counts()
            assert counts["sending"] == counts["dead"] == 0, counts
        finally:
            app.close()


def test_killed_after_jiras_first_demand_comment_was_posted_makes_none_twice(tmp_path):
    """Jira's first demand comment on an issue goes out with no look when the feed read every
    comment of the issue and none was syncd's, and the store holds no write of the slot. The
    process dies the moment Jira applied that POST, before the store heard the answer: the
    store had noted the write as being sent, so the next run looks (finds it by its property)
    and never posts a second one, also when the demand changes afterwards."""
    from tests.e2e.handoff_support import copy_examples

    def demand_posts(endpoint, request) -> bool:
        if endpoint != "POST /rest/api/3/issue/{issueIdOrKey}/comment":
            return False
        body = json.loads(request.body or b"{}")
        return any((p.get("value") or {}).get("slot") == "demand" for p in body.get("properties") or [])

    def demand_comments(pg: Playground, issue) -> list[str]:
        return [
            c["id"]
            for c in issue.comments
            if any((p.get("value") or {}).get("slot") == "demand" for p in c["properties"])
        ]

    with Playground(tmp_path / "work", trackers=("linear", "jira"), mappings=copy_examples(tmp_path)) as pg:
        issue = next(iter(pg.jira.issues.values()))
        customer = next(iter(pg.seed.customers.values()))
        pg.zendesk.create_ticket("Export fails", f"We see {issue.key} here.", requester_id=customer, status="open")
        start, holder = kill_on(pg, "jira", demand_posts)
        pg.sandbox.reset_counts()
        code, _, _ = run_once(pg, start)
        assert holder.get("done"), "no demand comment was posted to Jira"
        assert code == -signal.SIGKILL
        jira = pg.sandbox.counts()["jira"]
        assert "GET /rest/api/3/issue/{issueIdOrKey}/comment" not in jira, jira  # posted with no look
        [landed] = demand_comments(pg, issue)

        pg.sandbox.reset_counts()
        code, _, err = run_once(pg)
        assert code == 0, err
        assert demand_comments(pg, issue) == [landed]

        pg.zendesk.create_ticket("Same here", f"{issue.key} again.", requester_id=customer, status="open")
        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        assert demand_comments(pg, issue) == [landed]
        app = pg.app()
        try:
            counts = app.store.outbox_counts()
            assert counts["sending"] == counts["dead"] == 0, counts
        finally:
            app.close()
