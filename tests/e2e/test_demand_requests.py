"""The handoff's demand comment on Linear costs no read the feed or the store answers (issue 13).

End to end through the sandbox with the shipped example mappings (the handoff
on): the first sync creates each linked issue's demand comment inside the
batched ``SyncdWrites`` document with no look first (the feed read each issue
and saw no comment of syncd's; the store held no earlier write); a later
change edits the same comment without a look, in this process and in a new
one (the store names the comment); and a lost store finds the comments by the
feed again, never making a second one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from syncd.sandbox.harness import Playground
from tests.e2e.handoff_support import MondayClock, cycle, handoff_playground

pytestmark = pytest.mark.e2e

SLOT = "<!-- syncd:demand -->"
LOOKS = ("POST /graphql SyncdFindSlot", "POST /graphql SyncdFindSlots", "POST /graphql SyncdSlotComment")


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    with handoff_playground(tmp_path, clock) as playground:
        yield playground


def demand_comments(pg: Playground) -> dict[str, list[dict]]:
    """Issue id -> syncd's demand comments on it."""
    out: dict[str, list[dict]] = {}
    for c in pg.linear.comments.values():
        if SLOT in c["body"] and c["userId"] == pg.linear.api_user["id"]:
            out.setdefault(c["issueId"], []).append(c)
    return out


def new_ticket_naming(pg: Playground, identifier: str, subject: str) -> int:
    customer = next(iter(pg.seed.customers.values()))
    return pg.zendesk.create_ticket(
        subject, f"Same problem as {identifier} here.", requester_id=customer, status="open"
    )["id"]


def test_demand_comment_is_created_batched_and_edited_without_a_look(pg, clock, tmp_path):
    pg.sandbox.reset_counts()
    app = pg.app(clock=clock)
    try:
        assert app.engine.cycle().ok  # the first sync of the seeded desk
        linear = Counter(pg.sandbox.counts()["linear"])
        comments = demand_comments(pg)
        assert comments, "the seeded desk gave no Linear issue a demand comment"
        assert all(len(c) == 1 for c in comments.values()), "a demand comment was made twice"
        # Created in SyncdWrites beside the attachments: no look, no single create.
        assert not [k for k in linear if k in LOOKS or k == "POST /graphql SyncdCommentCreate"], linear
        assert linear["POST /graphql SyncdWrites"] >= 1

        issue_id = sorted(comments)[0]
        [first] = comments[issue_id]
        first_body = first["body"]
        identifier = pg.linear.issue(issue_id)["identifier"]

        # One more ticket names the issue: the same comment is edited, with no look first.
        pg.sandbox.reset_counts()
        new_ticket_naming(pg, identifier, "Export fails for us too")
        cycle(app, clock)
        cycle(app, clock)
        linear = Counter(pg.sandbox.counts()["linear"])
        assert not [k for k in linear if k in LOOKS or k == "POST /graphql SyncdCommentCreate"], linear
        [edited] = demand_comments(pg)[issue_id]
        assert edited["id"] == first["id"] and edited["body"] != first_body
    finally:
        app.close()

    # A new process: the store names the comment, which is edited with no look.
    pg.sandbox.reset_counts()
    second_body = edited["body"]
    app = pg.app(clock=clock)
    try:
        new_ticket_naming(pg, identifier, "And for the night shift")
        cycle(app, clock)
        cycle(app, clock)
        linear = Counter(pg.sandbox.counts()["linear"])
        assert not [k for k in linear if k in LOOKS or k == "POST /graphql SyncdCommentCreate"], linear
        [again] = demand_comments(pg)[issue_id]
        assert again["id"] == first["id"] and again["body"] != second_body
    finally:
        app.close()

    # The store is lost: the feed reads the comments again; none is made a second time.
    before = {issue: [c["id"] for c in cs] for issue, cs in demand_comments(pg).items()}
    for path in [pg.store_path, *(Path(f"{pg.store_path}{x}") for x in ("-wal", "-shm", ".lock"))]:
        path.unlink(missing_ok=True)
    app = pg.app(clock=clock)
    try:
        assert app.engine.cycle().ok
        cycle(app, clock)
    finally:
        app.close()
    after = {issue: [c["id"] for c in cs] for issue, cs in demand_comments(pg).items()}
    assert after == before


def test_the_kept_slot_is_declared_where_the_trackers_are_built(pg, clock):
    """The handoff's demand slot reaches each tracker as a setting of its construction
    (syncd.app.kept_slots, from the mapping files), not set on the object afterwards."""
    from syncd.app import build_connectors, kept_slots

    app = pg.app(clock=clock)
    try:
        assert kept_slots(app.engine.mappings) == ("demand",)
        assert app.connectors["linear"].kept_slots == ("demand",)
        assert app.connectors["zendesk"].__dict__.get("kept_slots") is None  # a helpdesk keeps no slot
    finally:
        app.close()
    assert kept_slots(None) == ()
    assert build_connectors(pg.settings())["linear"].kept_slots == ()
