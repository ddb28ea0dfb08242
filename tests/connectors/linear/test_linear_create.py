"""Escalation writes of the Linear connector against a mocked GraphQL endpoint:
issues syncd creates (create_issue / find_created) and the comment kept in
place per slot (upsert_comment)."""

from __future__ import annotations

import uuid

import pytest
import structlog

from connectors.base import SlotRecord, find_markers, marker_token
from connectors.linear.connector import LABEL_MISS_TTL, created_issue_id, linear_priority
from syncd.errors import ApiError, AuthError, Gone, NotFound, TransientError
from syncd.records import parse_time
from syncd.writes import IssueDraft
from tests.connectors.linear.test_linear import MARK, Clock, api, make, rsps  # noqa: F401 (fixtures)

TEAM_ID = "team-eng-uuid"
OTHER = "fedcba9876543210fedc"
DRAFT = IssueDraft(
    title="Export fails for Acme",
    body="**Customer:** Acme\n\nSteps: ...",
    labels=("bug", "Customer", "missing"),
    priority="sev1",
)


def lookup(
    team: dict | None = None, labels: list[dict] | None = None, *, with_team: bool = True, with_labels: bool = True
) -> dict:
    out: dict = {}
    if with_team:
        out["teams"] = {"nodes": [team] if team else []}
    if with_labels:
        out["issueLabels"] = {"nodes": labels or []}
    return out


def label(name: str, ident: str, team: str | None = None) -> dict:
    return {"id": ident, "name": name, "team": {"key": team} if team else None}


def created(key: str = MARK, updated: str = "2025-06-01T10:00:00.000Z") -> dict:
    return {
        "issueCreate": {
            "success": True,
            "issue": {"id": created_issue_id(key), "identifier": "ENG-7", "updatedAt": updated},
        }
    }


def ops(api) -> list[str]:
    return [s["payload"]["operationName"] for s in api.sent]


# --- ids and priorities ---------------------------------------------------------------


def test_created_issue_id_is_a_stable_uuid4_per_key():
    one = created_issue_id(MARK)
    assert one == created_issue_id(MARK) and one != created_issue_id(OTHER)
    parsed = uuid.UUID(one)
    assert parsed.version == 4 and str(parsed) == one


@pytest.mark.parametrize(
    "word, want",
    [
        ("sev1", 1),
        ("SEV2", 2),
        ("sev3", 3),
        ("sev4", 4),
        ("urgent", 1),
        ("high", 2),
        ("normal", 3),
        ("low", 4),
        ("sev5", None),
        (None, None),
        ("", None),
    ],
)
def test_priority_words_map_to_linear_numbers(word, want):
    assert linear_priority(word) == want


# --- create_issue ---------------------------------------------------------------------


def test_create_is_one_lookup_then_one_create_with_the_keyed_id(api):
    api.data(
        "SyncdCreateLookup",
        lookup({"id": TEAM_ID, "key": "ENG"}, [label("Bug", "lab-bug", "ENG"), label("customer", "lab-cust")]),
    )
    api.data("SyncdIssueCreate", created())
    conn = make()
    with structlog.testing.capture_logs() as logs:
        result = conn.create_issue("ENG", DRAFT, MARK)

    assert result.id == created_issue_id(MARK) and result.updated_at == parse_time("2025-06-01T10:00:00Z")
    assert ops(api) == ["SyncdCreateLookup", "SyncdIssueCreate"]
    (looked,) = api.variables("SyncdCreateLookup")
    assert looked["teamKey"] == "ENG" and looked["withTeam"] is True and looked["withLabels"] is True
    assert looked["labels"] == {
        "and": [
            {"or": [{"name": {"eqIgnoreCase": n}} for n in ("bug", "Customer", "missing")]},
            {"or": [{"team": {"null": True}}, {"team": {"key": {"eq": "ENG"}}}]},
        ]
    }
    (sent,) = api.variables("SyncdIssueCreate")
    issue = sent["input"]
    assert issue["id"] == created_issue_id(MARK) and issue["teamId"] == TEAM_ID
    assert issue["title"] == DRAFT.title and issue["priority"] == 1
    assert issue["labelIds"] == ["lab-bug", "lab-cust"]  # "missing" is skipped, not created
    assert issue["description"].startswith(DRAFT.body)
    assert issue["description"].endswith(f"<!-- {marker_token(MARK)} -->")
    assert find_markers(issue["description"]) == (MARK,)
    assert [e["label"] for e in logs if "skipped" in e["event"]] == ["missing"]


def test_lookups_are_cached_for_the_process(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, [label("bug", "lab-bug")]))
    api.data("SyncdIssueCreate", created())
    api.data("SyncdIssueCreate", created(OTHER))
    conn = make()
    conn.create_issue("ENG", IssueDraft("A", "a", labels=("bug",)), MARK)
    conn.create_issue("eng", IssueDraft("B", "b", labels=("BUG",)), OTHER)  # same team, same label
    assert ops(api) == ["SyncdCreateLookup", "SyncdIssueCreate", "SyncdIssueCreate"]
    assert api.variables("SyncdIssueCreate")[1]["input"]["labelIds"] == ["lab-bug"]


def test_a_new_label_name_looks_up_labels_only(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.data("SyncdIssueCreate", created())
    api.data("SyncdCreateLookup", lookup(labels=[label("ux", "lab-ux")], with_team=False))
    api.data("SyncdIssueCreate", created(OTHER))
    conn = make()
    conn.create_issue("ENG", IssueDraft("A", "a"), MARK)
    conn.create_issue("ENG", IssueDraft("B", "b", labels=("ux",)), OTHER)
    first, second = api.variables("SyncdCreateLookup")
    assert (first["withTeam"], first["withLabels"], first["labels"]) == (True, False, {})
    assert (second["withTeam"], second["withLabels"]) == (False, True)
    assert "labelIds" not in api.variables("SyncdIssueCreate")[0]["input"]
    assert api.variables("SyncdIssueCreate")[1]["input"]["labelIds"] == ["lab-ux"]


def test_a_missing_label_is_looked_up_again_after_a_while(api):
    clock = Clock()
    conn = make(clock)
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, []))
    api.data("SyncdIssueCreate", created())
    conn.create_issue("ENG", IssueDraft("A", "a", labels=("later",)), MARK)
    api.data("SyncdIssueCreate", created(OTHER))
    conn.create_issue("ENG", IssueDraft("B", "b", labels=("later",)), OTHER)  # still within the TTL
    assert ops(api).count("SyncdCreateLookup") == 1
    clock.t += LABEL_MISS_TTL + 1
    api.data("SyncdCreateLookup", lookup(labels=[label("later", "lab-later")], with_team=False))
    api.data("SyncdIssueCreate", created("1" * 20))
    conn.create_issue("ENG", IssueDraft("C", "c", labels=("later",)), "1" * 20)
    assert ops(api).count("SyncdCreateLookup") == 2
    assert api.variables("SyncdIssueCreate")[-1]["input"]["labelIds"] == ["lab-later"]


def test_the_teams_own_label_wins_and_another_teams_is_not_used(api):
    api.data(
        "SyncdCreateLookup",
        lookup(
            {"id": TEAM_ID, "key": "ENG"},
            [label("bug", "ws-bug"), label("Bug", "eng-bug", "ENG"), label("ops", "app-ops", "APP")],
        ),
    )
    api.data("SyncdIssueCreate", created())
    make().create_issue("ENG", IssueDraft("A", "a", labels=("bug", "ops")), MARK)
    assert api.variables("SyncdIssueCreate")[0]["input"]["labelIds"] == ["eng-bug"]


def test_unknown_team_is_not_found_naming_the_team_and_nothing_is_created(api):
    api.data("SyncdCreateLookup", lookup(None, []))
    with pytest.raises(NotFound) as info:
        make().create_issue("OPS", DRAFT, MARK)
    message = str(info.value)
    assert "'OPS'" in message and "route" in message and "\n" not in message
    assert ops(api) == ["SyncdCreateLookup"]


def test_no_priority_when_the_word_is_unknown(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.data("SyncdIssueCreate", created())
    make().create_issue("ENG", IssueDraft("A", "a", priority="whenever"), MARK)
    assert "priority" not in api.variables("SyncdIssueCreate")[0]["input"]


def _refused(message: str = "Argument Validation Error", code: str = "INVALID_INPUT") -> dict:
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


def test_a_refused_create_whose_issue_exists_answers_with_that_issue(api):
    """A second create with the same key (the first one's answer was lost) is refused by
    Linear because the id is taken: that issue is the answer, and no other is made."""
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.reply("SyncdIssueCreate", _refused("An issue with this id already exists"))
    api.data("SyncdFindCreated", {"issue": {"id": created_issue_id(MARK), "updatedAt": "2025-06-01T09:00:00.000Z"}})
    result = make().create_issue("ENG", IssueDraft("A", "a"), MARK)
    assert result.id == created_issue_id(MARK) and result.updated_at == parse_time("2025-06-01T09:00:00Z")
    assert api.variables("SyncdFindCreated") == [{"id": created_issue_id(MARK)}]


def test_a_refused_create_without_an_issue_raises(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.reply("SyncdIssueCreate", _refused("title is too long"))
    api.reply("SyncdFindCreated", _refused("Entity not found: Issue"))
    with pytest.raises(ApiError, match="title is too long"):
        make().create_issue("ENG", IssueDraft("A", "a"), MARK)


def test_auth_refusal_is_auth_error_without_a_lookup_for_the_issue(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.reply("SyncdIssueCreate", _refused("not allowed", "FORBIDDEN"))
    with pytest.raises(AuthError):
        make().create_issue("ENG", IssueDraft("A", "a"), MARK)
    assert "SyncdFindCreated" not in ops(api)


def test_a_stale_cached_team_is_looked_up_again_once(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.data("SyncdIssueCreate", created())
    conn = make()
    conn.create_issue("ENG", IssueDraft("A", "a"), MARK)
    api.reply("SyncdIssueCreate", _refused("Entity not found: Team"))
    api.data("SyncdCreateLookup", lookup({"id": "team-eng-new", "key": "ENG"}, with_labels=False))
    api.data("SyncdIssueCreate", created(OTHER))
    conn.create_issue("ENG", IssueDraft("B", "b"), OTHER)
    assert ops(api)[2:] == ["SyncdIssueCreate", "SyncdCreateLookup", "SyncdIssueCreate"]
    assert api.variables("SyncdIssueCreate")[-1]["input"]["teamId"] == "team-eng-new"


def test_not_found_after_a_fresh_lookup_is_not_retried(api):
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.reply("SyncdIssueCreate", _refused("Entity not found: Team"))
    with pytest.raises(NotFound):
        make().create_issue("ENG", IssueDraft("A", "a"), MARK)
    assert ops(api) == ["SyncdCreateLookup", "SyncdIssueCreate"]


def test_a_lost_create_answer_is_sent_again_and_resolved_by_the_id(api):
    """The create carries its own id, so the HTTP layer may resend it after a 502."""
    api.data("SyncdCreateLookup", lookup({"id": TEAM_ID, "key": "ENG"}, with_labels=False))
    api.reply("SyncdIssueCreate", {"error": "bad gateway"}, status=502)
    api.reply("SyncdIssueCreate", _refused("An issue with this id already exists"))
    api.data("SyncdFindCreated", {"issue": {"id": created_issue_id(MARK), "updatedAt": None}})
    clock = Clock()
    assert make(clock).create_issue("ENG", IssueDraft("A", "a"), MARK).id == created_issue_id(MARK)
    assert ops(api) == ["SyncdCreateLookup", "SyncdIssueCreate", "SyncdIssueCreate", "SyncdFindCreated"]
    first, second = api.variables("SyncdIssueCreate")
    assert first == second


# --- find_created -----------------------------------------------------------------------


def test_find_created_reads_the_issue_by_its_keyed_id(api):
    api.data("SyncdFindCreated", {"issue": {"id": created_issue_id(MARK), "updatedAt": "2025-06-01T00:00:00.000Z"}})
    assert make().find_created("ENG", MARK) == created_issue_id(MARK)
    assert api.variables("SyncdFindCreated") == [{"id": created_issue_id(MARK)}]


def test_find_created_is_none_when_linear_has_no_such_issue(api):
    api.reply("SyncdFindCreated", _refused("Entity not found: Issue"))
    assert make().find_created("ENG", MARK) is None


def test_find_created_does_not_hide_other_failures(api):
    api.reply("SyncdFindCreated", _refused("Authentication required", "AUTHENTICATION_ERROR"))
    with pytest.raises(AuthError):
        make().find_created("ENG", MARK)


# --- upsert_comment ----------------------------------------------------------------------

ISSUE_UUID = "issue-uuid-1"
ME = "user-syncd"


def slot_scan(comments: list[dict], viewer: str = ME) -> dict:
    return {"viewer": {"id": viewer}, "issue": {"id": ISSUE_UUID, "comments": {"nodes": comments}}}


def comment(
    ident: str,
    body: str,
    *,
    user: str = ME,
    created_at: str = "2025-06-01T00:00:00.000Z",
    updated: str = "2025-06-01T00:00:00.000Z",
) -> dict:
    return {"id": ident, "body": body, "createdAt": created_at, "updatedAt": updated, "user": {"id": user}}


def wrote(ident: str, op: str = "commentCreate", updated: str = "2025-06-02T00:00:00.000Z") -> dict:
    return {op: {"success": True, "comment": {"id": ident, "updatedAt": updated}}}


def slot_text(body: str, key: str, slot: str = "demand") -> str:
    return f"{body}\n\n<!-- syncd:{slot} -->\n<!-- {marker_token(key)} -->"


def test_upsert_creates_then_edits_in_place_without_reading_it_again(api):
    conn = make()
    api.data("SyncdFindSlot", slot_scan([]))
    api.data("SyncdCommentCreate", wrote("c-1"))
    first = conn.upsert_comment("ENG-7", "2 tickets, 2 organisations", MARK, "demand")
    assert first.id == "c-1"
    (scan,) = api.variables("SyncdFindSlot")
    assert scan == {"issue": "ENG-7", "comments": {"body": {"contains": "<!-- syncd:demand -->"}}}
    (made,) = api.variables("SyncdCommentCreate")
    assert made["input"] == {"issueId": ISSUE_UUID, "body": slot_text("2 tickets, 2 organisations", MARK)}

    # Next time: the comment this process wrote is edited with commentUpdate, nothing read first.
    api.data("SyncdCommentUpdate", wrote("c-1", "commentUpdate", "2025-06-03T00:00:00.000Z"))
    second = conn.upsert_comment("ENG-7", "3 tickets, 2 organisations", OTHER, "demand")
    assert second.id == "c-1" and second.updated_at == parse_time("2025-06-03T00:00:00Z")
    (edit,) = api.variables("SyncdCommentUpdate")
    assert edit == {"id": "c-1", "input": {"body": slot_text("3 tickets, 2 organisations", OTHER)}}
    assert ops(api) == ["SyncdFindSlot", "SyncdCommentCreate", "SyncdCommentUpdate"]


def test_the_comment_the_store_names_is_edited_without_a_look(api):
    api.data("SyncdCommentUpdate", wrote("c-5", "commentUpdate"))
    result = make().upsert_comment(ISSUE_UUID, "4 tickets", OTHER, "demand", known=SlotRecord(True, "c-5"))
    assert result.id == "c-5" and ops(api) == ["SyncdCommentUpdate"]
    assert api.variables("SyncdCommentUpdate")[0]["id"] == "c-5"


@pytest.mark.parametrize("known", [None, SlotRecord(False), SlotRecord(True)])
def test_without_the_feeds_word_the_store_alone_does_not_vouch_for_no_comment(api, known):
    """A new or lost store holds no write of the slot, yet the comment may be there: looked for first."""
    api.data("SyncdFindSlot", slot_scan([comment("c-old", slot_text("old", MARK))]))
    api.data("SyncdCommentUpdate", wrote("c-old", "commentUpdate"))
    assert make().upsert_comment(ISSUE_UUID, "new", OTHER, "demand", known=known).id == "c-old"
    assert ops(api) == ["SyncdFindSlot", "SyncdCommentUpdate"]


def test_the_latest_key_is_carried_so_find_marker_sees_it(api):
    api.data("SyncdFindSlot", slot_scan([comment("c-9", slot_text("Demand: 2 tickets", MARK))]))
    api.data("SyncdCommentUpdate", wrote("c-9", "commentUpdate"))
    make().upsert_comment(ISSUE_UUID, "Demand: 3 tickets", OTHER, "demand")  # only the end differs
    body = api.variables("SyncdCommentUpdate")[0]["input"]["body"]
    assert find_markers(body) == (OTHER,)


def test_same_words_under_a_new_key_are_not_rewritten(api):
    """Only the key marker would change: no edit (a re-send after a crash lands here too)."""
    api.data("SyncdFindSlot", slot_scan([comment("c-9", slot_text("same", MARK), updated="2025-06-05T00:00:00.000Z")]))
    result = make().upsert_comment(ISSUE_UUID, "same", OTHER, "demand")
    assert result.id == "c-9" and result.updated_at == parse_time("2025-06-05T00:00:00Z")
    assert ops(api) == ["SyncdFindSlot"]


def test_scan_keeps_only_syncds_own_comment_and_the_oldest(api):
    api.data(
        "SyncdFindSlot",
        slot_scan(
            [
                comment(
                    "someone",
                    slot_text("copied by a person", MARK),
                    user="user-ada",
                    created_at="2025-01-01T00:00:00.000Z",
                ),
                comment("newer", slot_text("dup", MARK), created_at="2025-06-02T00:00:00.000Z"),
                comment("older", slot_text("first", MARK), created_at="2025-06-01T00:00:00.000Z"),
                comment("other-slot", slot_text("x", MARK, slot="demand2")),
            ]
        ),
    )
    api.data("SyncdCommentUpdate", wrote("older", "commentUpdate"))
    make().upsert_comment(ISSUE_UUID, "now", MARK, "demand")
    assert api.variables("SyncdCommentUpdate")[0]["id"] == "older"


def test_a_person_copying_the_marker_does_not_capture_the_slot(api):
    api.data("SyncdFindSlot", slot_scan([comment("someone", slot_text("x", MARK), user="user-ada")]))
    api.data("SyncdCommentCreate", wrote("c-new"))
    assert make().upsert_comment(ISSUE_UUID, "mine", MARK, "demand").id == "c-new"
    assert "SyncdCommentUpdate" not in ops(api)


def test_an_edit_of_a_comment_someone_deleted_looks_again_and_creates_it(api):
    conn = make()
    api.data("SyncdFindSlot", slot_scan([]))
    api.data("SyncdCommentCreate", wrote("c-1"))
    conn.upsert_comment(ISSUE_UUID, "one", MARK, "demand")
    gone = {"data": None, "errors": [{"message": "Entity not found: Comment", "extensions": {"code": "INVALID_INPUT"}}]}
    api.reply("SyncdCommentUpdate", gone)
    api.data("SyncdFindSlot", slot_scan([]))
    api.data("SyncdCommentCreate", wrote("c-2"))
    assert conn.upsert_comment(ISSUE_UUID, "two", OTHER, "demand").id == "c-2"
    assert ops(api)[2:] == ["SyncdCommentUpdate", "SyncdFindSlot", "SyncdCommentCreate"]
    # The store's word for the deleted one is not taken again either, once it failed in this process.
    api.data("SyncdCommentUpdate", wrote("c-2", "commentUpdate"))
    assert conn.upsert_comment(ISSUE_UUID, "three", MARK, "demand", known=SlotRecord(True, "c-1")).id == "c-2"


def test_slots_are_kept_apart(api):
    conn = make()
    api.data("SyncdFindSlot", slot_scan([]))
    api.data("SyncdCommentCreate", wrote("c-demand"))
    conn.upsert_comment(ISSUE_UUID, "demand", MARK, "demand")
    api.data("SyncdFindSlot", slot_scan([]))
    api.data("SyncdCommentCreate", wrote("c-context"))
    conn.upsert_comment(ISSUE_UUID, "context", OTHER, "context")
    assert [v["comments"]["body"]["contains"] for v in api.variables("SyncdFindSlot")] == [
        "<!-- syncd:demand -->",
        "<!-- syncd:context -->",
    ]


def test_unknown_issue_is_gone(api):
    api.reply(
        "SyncdFindSlot",
        {"data": None, "errors": [{"message": "Entity not found: Issue", "extensions": {"code": "INVALID_INPUT"}}]},
    )
    with pytest.raises(Gone):
        make().upsert_comment("ENG-404", "x", MARK, "demand")


def test_a_bad_slot_name_is_refused_before_any_request(api):
    with pytest.raises(ValueError, match="slot"):
        make().upsert_comment(ISSUE_UUID, "x", MARK, "Demand Slot")
    assert api.sent == []


def test_a_lost_edit_answer_is_sent_again(api):
    """An edit to a fixed text is safe to repeat: the HTTP layer resends it after a 502."""
    api.data("SyncdFindSlot", slot_scan([comment("c-1", slot_text("old", MARK))]))
    api.reply("SyncdCommentUpdate", {"error": "bad gateway"}, status=502)
    api.data("SyncdCommentUpdate", wrote("c-1", "commentUpdate"))
    assert make(Clock()).upsert_comment(ISSUE_UUID, "new", OTHER, "demand").id == "c-1"
    assert ops(api).count("SyncdCommentUpdate") == 2


def test_a_lost_comment_create_answer_is_not_resent(api):
    api.data("SyncdFindSlot", slot_scan([]))
    api.reply("SyncdCommentCreate", {"error": "bad gateway"}, status=502)
    with pytest.raises(TransientError) as info:
        make().upsert_comment(ISSUE_UUID, "new", MARK, "demand")
    assert info.value.maybe_applied and ops(api).count("SyncdCommentCreate") == 1
