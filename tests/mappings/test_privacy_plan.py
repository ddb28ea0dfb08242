"""Planning for a place that turned public (mappings/privacy_plan.py): pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from mappings.privacy_plan import opaque_group, plan_kept_notes, plan_make_opaque, written_comments
from syncd.records import Issue, Ref, StateCategory
from syncd.writes import (
    ISSUE_ATTACH,
    ISSUE_COMMENT,
    ISSUE_OPAQUE,
    ISSUE_UPSERT,
    TICKET_UPDATE,
)


@dataclass
class Row:
    op: str
    result: dict | None


def issue() -> Issue:
    return Issue(
        Ref("github", "907"),
        "acme/billing#7",
        "https://github.com/acme/billing/issues/7",
        "t",
        StateCategory.UNSTARTED,
        "Open",
        datetime(2026, 11, 23, tzinfo=timezone.utc),
        team="acme/billing",
    )


def test_one_rewrite_per_issue_place_and_moment_in_a_queue_of_its_own():
    a = plan_make_opaque(issue(), "acme/billing", "2026-11-23T09:00:00Z", slots={"demand": "counts"})
    again = plan_make_opaque(issue(), "ACME/billing", "2026-11-23T09:00:00Z", slots={"demand": "counts"})
    later = plan_make_opaque(issue(), "acme/billing", "2026-12-01T09:00:00Z")
    assert a.key == again.key != later.key  # a place turning public a second time is a new rewrite
    assert (a.op, a.target, a.group) == (ISSUE_OPAQUE, "907", opaque_group(Ref("github", "907")))
    assert a.write.payload()["slots"] == {"demand": "counts"} and a.write.payload()["created"] is None


def test_written_comments_keeps_the_last_write_of_each_comment():
    rows = [
        Row(ISSUE_ATTACH, {"id": "11", "updated_at": "08:00"}),
        Row(ISSUE_UPSERT, {"id": "12", "updated_at": "08:01"}),
        Row(ISSUE_ATTACH, {"id": "11", "updated_at": "08:05"}),
        Row(ISSUE_COMMENT, {"id": "13"}),
        Row(ISSUE_OPAQUE, {"comments": {"12": "09:00"}}),
    ]
    assert written_comments(rows) == {"11": "08:05", "12": "09:00"}


def test_kept_notes_one_per_ticket_plain_text_naming_what_and_where():
    kept = [
        {
            "what": "the demand comment",
            "url": "https://github.com/acme/billing/issues/7#issuecomment-12",
            "edited_by": None,
            "edited_at": "2026-11-23T08:40:00Z",
        }
    ]
    t1, t2 = Ref("zendesk", "21"), Ref("zendesk", "22")
    notes = plan_kept_notes("acme/billing#7", [t1, t2, t1], kept, "k" * 20)
    assert [(n.target, n.op) for n in notes] == [("21", TICKET_UPDATE), ("22", TICKET_UPDATE)]
    note = notes[0].write.payload()["note"]
    assert "acme/billing#7" in note and "the demand comment" in note and "issuecomment-12" in note
    assert (
        "someone other than syncd" in note and "on 2026-11-23 at 08:40 UTC" in note and "\\" not in note
    )  # plain text: no escapes a person would read
    assert notes[0].key != notes[1].key
    assert plan_kept_notes("acme/billing#7", [t1], [], "k" * 20) == []
