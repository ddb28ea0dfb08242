"""The typed outbox writes: merging, the stored payload both ways, the history line."""

from __future__ import annotations

import json

import pytest

from mappings.escaping import escape
from syncd.writes import (
    BY_OP,
    KINDS,
    AttachTicket,
    CreateIssue,
    DraftText,
    FollowUpTicket,
    IssueComment,
    MakeOpaque,
    MirrorComment,
    MirrorNote,
    TicketUpdate,
    UpsertComment,
    kind_of,
    read,
    stored,
)

EXAMPLES = [
    TicketUpdate(
        note="Linked to ENG-1",
        add_tags=("syncd_linked",),
        remove_tags=("old",),
        fields={"800": "ENG-1"},
        status="open",
        status_from=("pending", "solved"),
        marker="m1",
    ),
    TicketUpdate(note="just a note"),
    FollowUpTicket("Follow-up: login", "Tell them", "42", None, ("syncd_followup",)),
    IssueComment("a comment"),
    AttachTicket("https://help/1", "Zendesk #1", "open", public=True),
    CreateIssue(
        "ENG",
        DraftText("private title", "private body"),
        DraftText("T-1 sev1", "public body"),
        ("support",),
        "sev1",
        "7",
    ),
    UpsertComment("demand", "3 customers wait", customer_data=True),
    MakeOpaque("ENG", "ENG-9", {"demand": "opaque"}, {"key": "k", "private": None, "public": None}),
    MirrorNote("Ada on ENG-8:\nfixed", "linear:u1", "c9", "ENG-8", "Ada"),
    MirrorComment("From support (T-1):\n\nonly on Safari", True, "42", "n1", "Priya"),
]


def test_mirrored_writes_say_what_crossed_and_which_may_name_a_customer():
    note, comment = EXAMPLES[8], EXAMPLES[9]
    assert isinstance(note, MirrorNote) and isinstance(comment, MirrorComment)
    assert note.describe("1") == "mirrored Ada's comment on ENG-8: Ada on ENG-8:"
    assert note.update() == TicketUpdate(note="Ada on ENG-8:\nfixed")
    held = MirrorNote("not copied", "github:2", "n1", "acme/sdk#3", held=True)
    assert held.describe("1").startswith("held an agent's note (not copied to acme/sdk#3)")
    assert note.repeats() and comment.repeats()
    assert not comment.private_form(None)  # composed for a public place
    assert MirrorComment("Priya on #42", False).private_form(None)


def test_every_kind_has_an_example_and_a_unique_op():
    assert {type(w) for w in EXAMPLES} == set(KINDS)
    assert len(BY_OP) == len(KINDS)
    assert {k.role for k in KINDS} == {"helpdesk", "tracker"}


@pytest.mark.parametrize("write", EXAMPLES, ids=lambda w: w.op)
def test_a_write_survives_the_stored_payload_json(write):
    stored = json.loads(json.dumps(write.payload()))
    assert read(write.op, stored) == write


def test_payloads_keep_the_keys_existing_stores_hold():
    assert set(EXAMPLES[0].payload()) == {
        "note",
        "add_tags",
        "remove_tags",
        "fields",
        "status",
        "status_from",
        "marker",
    }
    assert EXAMPLES[1].payload() == {"note": "just a note"}  # empty parts left out
    assert set(EXAMPLES[5].payload()) == {"team", "private", "public", "labels", "priority", "ticket"}
    assert EXAMPLES[5].payload()["public"] == {"title": "T-1 sev1", "body": "public body"}
    assert set(EXAMPLES[7].payload()) == {"place", "issue_key", "slots", "created"}
    # A payload an older version stored reads as it did.
    old = read("ticket.update", {"note": "n", "add_tags": ["x"], "fields": {}})
    assert old == TicketUpdate(note="n", add_tags=("x",))


def test_the_planning_hint_rides_in_the_planned_payload_and_is_settled_away():
    hinted = TicketUpdate(note="due", status="open", replaces_resolution=True)
    assert read(hinted.op, hinted.payload()) == hinted  # from the planner to the handoff's merge
    assert "replaces_resolution" not in hinted.settled().payload()  # what the store holds


def test_an_action_carries_the_op_and_the_payload():
    action = IssueComment("hi").action("k", "linear", "I1", "issue:linear:I1")
    assert (action.op, action.write.payload(), action.target) == ("issue.comment", {"body": "hi"}, "I1")


def test_writes_that_would_show_twice_are_checked_before_their_first_send():
    shows_twice = [w for w in EXAMPLES if w.repeats()]
    assert {type(w) for w in shows_twice} == {
        TicketUpdate,
        FollowUpTicket,
        IssueComment,
        CreateIssue,
        MirrorNote,
        MirrorComment,
    }
    assert not TicketUpdate(add_tags=("a",), fields={"1": "x"}).repeats()  # the same tags and fields twice: no harm


def test_private_form_tells_writes_that_may_have_named_a_customer():
    assert UpsertComment("demand", "Northwind asks", customer_data=True).private_form(None)
    assert not UpsertComment("demand", "2 customers ask", customer_data=False).private_form(None)
    attach = AttachTicket("u", "t", "s")
    assert attach.private_form(None) and not AttachTicket("u", "t", "s", public=True).private_form(None)
    create = CreateIssue("ENG", DraftText("Northwind", "b"), DraftText("T-1", "b"))
    assert create.private_form({"draft": "private"}) and not create.private_form({"draft": "public"})
    assert create.private_form({})  # written before the draft was recorded: may have
    assert not IssueComment("hi").private_form(None)


def test_a_ticket_update_is_found_by_its_shared_marker_others_by_their_key():
    assert TicketUpdate(note="n", marker="bulk-1").marker_for("k1") == "bulk-1"
    assert TicketUpdate(note="n").marker_for("k1") == "k1"
    assert IssueComment("hi").marker_for("k1") == "k1"


@pytest.mark.parametrize("write", EXAMPLES, ids=lambda w: type(w).__name__)
def test_a_stored_row_reads_back_as_its_write_and_an_unknown_op_as_none(write):
    class Row:
        op = write.op
        payload = json.loads(json.dumps(write.payload()))

    assert stored(Row()) == write
    assert kind_of(write.op) is type(write)

    class Unknown:
        op, payload = "ticket.telepathy", {}

    assert stored(Unknown()) is None and kind_of("ticket.telepathy") is None


def test_merge_puts_notes_as_paragraphs_merges_tags_and_fields_and_keeps_the_first_status():
    first = TicketUpdate(
        note="Linked", add_tags=("a",), fields={"1": "x"}, status="open", status_from=("pending",), marker="m1"
    )
    more = TicketUpdate(
        note="Stage", add_tags=("b",), remove_tags=("a", "c"), fields={"2": "y"}, status="pending", marker="m2"
    )
    merged = first.merge(more)
    assert merged.note == "Linked\n\nStage"
    assert merged.add_tags == ("a", "b") and merged.remove_tags == ("c",)  # a tag added is not also removed
    assert merged.fields == {"1": "x", "2": "y"}
    assert (merged.status, merged.status_from, merged.marker) == ("open", ("pending",), "m1")
    assert TicketUpdate().merge(more).marker == "m2"
    assert TicketUpdate().merge(more, keep_marker=True).marker is None


def test_a_promise_note_replaces_the_resolution_note_it_repeats():
    resolution = TicketUpdate(note="All linked issues closed", status="open", status_from=("solved",))
    due = TicketUpdate(note="Promise due: all closed", status="open", replaces_resolution=True)
    assert resolution.merge(due).note == "Promise due: all closed"
    # Merged before the resolution: the hint stays, to be folded when the resolution comes.
    early = TicketUpdate(note="other").merge(due)
    assert early.replaces_resolution and early.status == "open"


def test_with_stage_sets_the_field_and_swaps_the_tag_but_keeps_the_write_s_own_parts():
    stage = TicketUpdate(
        add_tags=("fu_assigned",),
        remove_tags=("fu_new", "fu_assigned", "fu_waiting"),
        fields={"900": "assigned"},
        marker="stage-m",
    )
    write = TicketUpdate(note="n", fields={"800": "ENG-1"}, marker="m")
    shown = write.with_stage(stage)
    assert shown.note == "n" and shown.marker == "m"
    assert shown.fields == {"800": "ENG-1", "900": "assigned"}
    assert shown.add_tags == ("fu_assigned",) and "fu_assigned" not in shown.remove_tags
    assert write.with_note("more").note == "n\n\nmore" and TicketUpdate().with_note("x").note == "x"


def test_an_empty_ticket_update_is_false():
    assert not TicketUpdate() and TicketUpdate(fields={"1": ""})


def test_describe_shows_the_text_as_the_place_shows_it_without_escapes():
    note = escape("ENG-1 *moved* to [Done]", "markdown") + "\nsecond line"
    assert escape("*moved*", "markdown") != "*moved*"  # the escape is real
    line = TicketUpdate(note=note, add_tags=("t",), fields={"1": "ENG-1: Done"}, status="open").describe(
        "1", text_format="markdown"
    )
    assert line == "internal note: ENG-1 *moved* to [Done] | tags +t | status field: ENG-1: Done | status → open"
    assert IssueComment(escape("a_b_c", "markdown")).describe("I1", text_format="markdown") == "comment: a_b_c"
    attach = AttachTicket("u", escape("Zendesk 1: *urgent*", "markdown"), "s")
    assert attach.describe("I1", attachment_format="markdown") == "attachment: Zendesk 1: *urgent*"
    assert EXAMPLES[5].describe("ENG") == "issue created in ENG: T-1 sev1"
    assert EXAMPLES[6].describe("I1") == "demand comment kept current: 3 customers wait"
    assert EXAMPLES[2].describe("7") == "follow-up ticket opened: Follow-up: login"
    assert TicketUpdate().describe("1") == "ticket update"
    assert MakeOpaque("ENG", "ENG-9").describe("I1") == "made private for a public place (ENG): nothing left to rewrite"
