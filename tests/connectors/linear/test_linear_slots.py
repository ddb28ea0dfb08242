"""The kept slot comment (the handoff's demand comment) on Linear with no look the feed
or the store answers: the feed's read of syncd's own comment per issue, the batched
creates and edits in SyncdWrites, the batched look (SyncdFindSlots) of those nothing
vouches for, and an edit of a comment someone deleted."""

from __future__ import annotations

from graphql import parse

from connectors.base import BatchedWrite, SlotRecord, marker_token
from connectors.linear.connector import LinearConnector
from connectors.linear.fake import estimate_complexity
from connectors.linear.queries import FEED, ISSUES
from syncd.errors import Gone
from syncd.writes import AttachTicket, UpsertComment
from tests.connectors.linear.test_linear import MARK, api, issues_page, make, node, rsps  # noqa: F401 (fixtures)

OTHER = "fedcba9876543210fedc"
ISSUE_1 = node(1, "")["id"]
ISSUE_2 = node(2, "")["id"]
OWN_SLOT = {"body": {"contains": "<!-- syncd:demand -->"}, "user": {"isMe": {"eq": True}}}


def ops(api) -> list[str]:
    return [s["payload"]["operationName"] for s in api.sent]


def slot_nodes(*ids: str) -> dict:
    return {"nodes": [{"id": i, "createdAt": f"2025-06-0{n + 1}T00:00:00.000Z"} for n, i in enumerate(ids)]}


def polled(api, *nodes: dict) -> LinearConnector:
    conn = make(kept_slots=("demand",))  # as syncd.app builds it with the handoff on
    api.data("SyncdIssues", issues_page(list(nodes)))
    list(conn.poll(None))
    return conn


def demand(n: int, body: str, known: SlotRecord | None, issue: str | None = None) -> BatchedWrite:
    return BatchedWrite(issue or node(n, "")["id"], MARK, UpsertComment("demand", body), known)


def wrote(*ids: str, op: str = "comment") -> dict:
    return {
        f"w{n}": {"success": True, op: {"id": i, "updatedAt": "2025-06-09T00:00:00.000Z"}} for n, i in enumerate(ids)
    }


def test_the_feed_reads_syncds_own_slot_comment_only_when_a_slot_is_kept(api):
    api.data("SyncdIssues", issues_page([]))
    list(make().poll(None))
    polled(api)
    plain, kept = api.variables("SyncdIssues")
    assert "withSlots" not in plain and "slots" not in plain  # the feed as it was
    assert kept["withSlots"] is True and kept["slots"] == OWN_SLOT


def test_a_slot_comment_the_feed_saw_none_of_is_created_in_the_batch_without_a_look(api):
    conn = polled(api, node(1, "2025-06-01T00:00:00.000Z", slots={"nodes": []}))
    api.data("SyncdWrites", wrote("a-1", op="attachment") | {"w1": wrote("c-1")["w0"]})
    attach = BatchedWrite(ISSUE_1, MARK, AttachTicket("https://z.example/tickets/1", "Ticket #1", ""))
    results = conn.send_batch([attach, demand(1, "2 tickets", SlotRecord(written=False))])
    assert [r.id for r in results] == ["a-1", "c-1"]
    assert ops(api) == ["SyncdIssues", "SyncdWrites"]
    sent = api.sent[-1]["payload"]
    assert "w1: commentCreate" in sent["query"]
    text = sent["variables"]["i1"]["body"]
    assert text.startswith("2 tickets") and "<!-- syncd:demand -->" in text and marker_token(MARK) in text

    # The comment it made is edited next time, nothing looked for.
    api.data("SyncdWrites", wrote("c-1"))
    conn.send_batch([demand(1, "3 tickets", SlotRecord(written=True))])
    assert (
        "w0: commentUpdate" in api.sent[-1]["payload"]["query"] and api.sent[-1]["payload"]["variables"]["c0"] == "c-1"
    )
    assert ops(api)[-1] == "SyncdWrites" and "SyncdFindSlots" not in ops(api)


def test_the_feed_alone_does_not_vouch_when_the_store_holds_a_write_of_the_slot(api):
    """Another replica may have written it since the feed's read: the store says so; without its id, a look."""
    conn = polled(api, node(1, "2025-06-01T00:00:00.000Z", slots={"nodes": []}))
    api.data("SyncdFindSlots", {"s0": {"id": ISSUE_1, "comments": slot_nodes("c-late")}})
    api.data("SyncdWrites", wrote("c-late"))
    [result] = conn.send_batch([demand(1, "2 tickets", SlotRecord(written=True))])
    assert result.id == "c-late" and ops(api)[1:] == ["SyncdFindSlots", "SyncdWrites"]
    assert api.variables("SyncdFindSlots")[0] == {"id0": ISSUE_1, "c0": OWN_SLOT}
    # and with the store's comment id, no look
    conn2 = polled(api, node(1, "2025-06-01T00:00:00.000Z", slots={"nodes": []}))
    api.data("SyncdWrites", wrote("c-stored"))
    conn2.send_batch([demand(1, "3 tickets", SlotRecord(written=True, comment_id="c-stored"))])
    assert ops(api)[-2:] == ["SyncdIssues", "SyncdWrites"]


def test_the_comment_the_feed_saw_is_edited(api):
    conn = polled(api, node(1, "2025-06-01T00:00:00.000Z", slots={"nodes": [{"id": "c-seen"}]}))
    api.data("SyncdWrites", wrote("c-seen"))
    conn.send_batch([demand(1, "2 tickets", None)])
    assert api.sent[-1]["payload"]["variables"]["c0"] == "c-seen"


def test_issues_the_feed_did_not_read_and_the_store_cannot_name_are_looked_for_together(api):
    conn = make()
    api.data(
        "SyncdFindSlots",
        {"s0": {"id": ISSUE_1, "comments": slot_nodes("c-1")}, "s1": {"id": ISSUE_2, "comments": {"nodes": []}}},
    )
    api.data("SyncdWrites", {"w0": wrote("c-1")["w0"], "w1": wrote("c-2")["w0"]})
    results = conn.send_batch([demand(1, "a", SlotRecord(written=False)), demand(2, "b", None)])
    assert [r.id for r in results] == ["c-1", "c-2"]
    assert ops(api) == ["SyncdFindSlots", "SyncdWrites"]
    query = api.sent[-1]["payload"]["query"]
    assert "w0: commentUpdate" in query and "w1: commentCreate" in query


def test_a_gone_issue_in_the_look_is_that_writes_answer_and_the_rest_go(api):
    missing = {"message": "Entity not found: Issue", "path": ["s0"], "extensions": {"code": "INVALID_INPUT"}}
    api.reply("SyncdFindSlots", {"data": None, "errors": [missing]})
    api.data("SyncdFindSlots", {"s0": {"id": ISSUE_2, "comments": {"nodes": []}}})
    api.data("SyncdWrites", wrote("c-2"))
    gone, made = make().send_batch([demand(1, "a", None), demand(2, "b", None)])
    assert isinstance(gone, Gone) and made.id == "c-2"
    assert api.variables("SyncdFindSlots")[1] == {"id0": ISSUE_2, "c0": OWN_SLOT}


def test_an_edit_in_a_batch_of_a_comment_someone_deleted_is_made_again(api):
    conn = polled(api, node(1, "2025-06-01T00:00:00.000Z", slots=slot_nodes("c-deleted")))
    deleted = {"message": "Entity not found: Comment", "path": ["w0"], "extensions": {"code": "INVALID_INPUT"}}
    api.reply("SyncdWrites", {"data": None, "errors": [deleted]})
    api.data("SyncdFindSlot", {"viewer": {"id": "me"}, "issue": {"id": ISSUE_1, "comments": {"nodes": []}}})
    api.data("SyncdCommentCreate", {"commentCreate": {"success": True, "comment": {"id": "c-new"}}})
    [result] = conn.send_batch([demand(1, "2 tickets", SlotRecord(written=True, comment_id="c-deleted"))])
    assert result.id == "c-new"
    assert ops(api)[1:] == ["SyncdWrites", "SyncdFindSlot", "SyncdCommentCreate"]


def test_the_slot_selection_adds_little_to_a_feed_page():
    """Every poll reads it: about 2 points an issue (the sandbox's estimate of Linear's
    scoring), where the page costs about 40 an issue."""
    variables = {"first": 50, "withSlots": True, "slots": OWN_SLOT}
    for document, name in ((ISSUES, "SyncdIssues"), (FEED, "SyncdFeed")):
        extra = {"cFirst": 50} if name == "SyncdFeed" else {}
        with_slots = estimate_complexity(parse(document), name, {**variables, **extra})
        without = estimate_complexity(parse(document.replace("...SyncdSlotFields", "")), name, {**variables, **extra})
        assert 0 < with_slots - without <= 2.5 * 50 and (with_slots - without) / without < 0.06
