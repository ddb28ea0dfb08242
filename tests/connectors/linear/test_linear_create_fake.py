"""The Linear fake serves what escalation sends (issues with a chosen id, labels by
name, comments read by id and edited), and the connector's create and in-place
comment run against it over real HTTP, including a create whose answer is lost."""

from __future__ import annotations

import pytest
import requests

from connectors.base import find_markers
from connectors.linear.connector import LinearConfig, LinearConnector, created_issue_id
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from syncd.errors import NotFound, TransientError
from syncd.sandbox.server import Sandbox
from syncd.writes import IssueDraft

KEY = "0123456789abcdef0123"
KEY2 = "fedcba9876543210fedc"


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.eng = lin.add_team("ENG", "Engineering")
    lin.app = lin.add_team("APP", "Apps")
    lin.bug = lin.add_label("Bug")
    lin.eng_ux = lin.add_label("ux", team="ENG")
    lin.app_ux = lin.add_label("ux", team="APP")
    lin.ada = lin.add_user("Ada Novak", "ada@product.example")
    with Sandbox([lin]):
        yield lin


@pytest.fixture
def gql(fake):
    def call(query: str, variables: dict | None = None, *, user_key: str = SANDBOX_API_KEY) -> dict:
        response = requests.post(
            fake.base_url + "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": user_key},
            timeout=5,
        )
        return response.json()

    return call


def connector(fake: LinearFake, *, kept_slots: tuple[str, ...] = (), **config) -> LinearConnector:
    settings = {
        "kind": "linear",
        "url": fake.base_url,
        "api_key": SANDBOX_API_KEY,
        "max_attempts": 3,
        "teams": ["ENG"],
        **config,
    }
    return LinearConnector("linear", LinearConfig(**settings), sleep=lambda s: None, kept_slots=kept_slots)


def issues_titled(fake: LinearFake, title: str) -> list[dict]:
    return [i for i in fake.issues.values() if i["title"] == title]


CREATE = "mutation($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id identifier } } }"


# -- the fake ------------------------------------------------------------------------------


def test_issue_create_takes_a_chosen_uuid_once(fake, gql):
    chosen = created_issue_id(KEY)
    first = gql(CREATE, {"input": {"id": chosen, "teamId": fake.eng["id"], "title": "A"}})
    assert first["data"]["issueCreate"]["issue"] == {"id": chosen, "identifier": "ENG-1"}
    again = gql(CREATE, {"input": {"id": chosen, "teamId": fake.eng["id"], "title": "A"}})
    assert again["data"] is None and "already exists" in again["errors"][0]["message"]
    not_uuid = gql(CREATE, {"input": {"id": "not-a-uuid", "teamId": fake.eng["id"], "title": "B"}})
    assert "UUID" in not_uuid["errors"][0]["message"]
    assert len(fake.issues) == 1


def test_issue_create_refuses_unknown_labels_and_another_teams_label(fake, gql):
    unknown = gql(CREATE, {"input": {"teamId": fake.eng["id"], "title": "A", "labelIds": ["no-such-label"]}})
    assert unknown["errors"][0]["message"] == "Entity not found: IssueLabel"
    foreign = gql(CREATE, {"input": {"teamId": fake.eng["id"], "title": "A", "labelIds": [fake.app_ux["id"]]}})
    assert "another team" in foreign["errors"][0]["message"]
    ok = gql(
        CREATE, {"input": {"teamId": fake.eng["id"], "title": "A", "labelIds": [fake.bug["id"], fake.eng_ux["id"]]}}
    )
    assert ok["data"]["issueCreate"]["success"] is True
    assert len(fake.issues) == 1 and len(fake.labels) == 3  # nothing made up on the way


def test_issue_labels_filter_by_name_ignoring_case_and_by_team_or_workspace(fake, gql):
    query = "query($f: IssueLabelFilter!) { issueLabels(filter: $f) { nodes { id name team { key } } } }"
    flt = {
        "and": [
            {"or": [{"name": {"eqIgnoreCase": "BUG"}}, {"name": {"eqIgnoreCase": "UX"}}]},
            {"or": [{"team": {"null": True}}, {"team": {"key": {"eq": "ENG"}}}]},
        ]
    }
    nodes = gql(query, {"f": flt})["data"]["issueLabels"]["nodes"]
    assert sorted((n["name"], (n["team"] or {}).get("key")) for n in nodes) == [("Bug", None), ("ux", "ENG")]


def test_comment_by_id_and_edited_by_its_author_only(fake, gql, clock):
    issue = fake.create_issue("ENG", "A")
    mine = fake.add_comment(issue, "first")
    theirs = fake.add_comment(issue, "theirs", user=fake.ada)
    read = gql("query($id: String!) { comment(id: $id) { id body issue { id } } }", {"id": mine["id"]})
    assert read["data"]["comment"] == {"id": mine["id"], "body": "first", "issue": {"id": issue["id"]}}
    missing = gql('{ comment(id: "nope") { id } }')
    assert missing["errors"][0]["message"] == "Entity not found: Comment"
    clock.advance(60)
    update = (
        "mutation($id: String!, $input: CommentUpdateInput!) { commentUpdate(id: $id, input: $input) "
        "{ success comment { id body updatedAt editedAt } } }"
    )
    edited = gql(update, {"id": mine["id"], "input": {"body": "second"}})["data"]["commentUpdate"]
    assert edited["success"] is True and edited["comment"]["body"] == "second"
    assert edited["comment"]["editedAt"] == edited["comment"]["updatedAt"] == "2026-11-21T12:01:00.000Z"
    refused = gql(update, {"id": theirs["id"], "input": {"body": "hijack"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert fake.comments[theirs["id"]]["body"] == "theirs"


# -- the connector against the fake -----------------------------------------------------------


def test_create_issue_end_to_end(fake):
    conn = connector(fake)
    draft = IssueDraft("Export fails for Acme", "**Customer:** Acme", labels=("bug", "UX", "nope"), priority="sev2")
    result = conn.create_issue("ENG", draft, KEY)
    stored = fake.issues[result.id]
    assert result.id == created_issue_id(KEY) and stored["title"] == "Export fails for Acme"
    assert sorted(stored["labelIds"]) == sorted([fake.bug["id"], fake.eng_ux["id"]])
    assert stored["priority"] == 2 and find_markers(stored["description"]) == (KEY,)
    assert conn.get_issue(result.id).key == "ENG-1"
    assert conn.find_created("ENG", KEY) == result.id and conn.find_created("ENG", KEY2) is None
    assert fake.counts == {
        "POST /graphql SyncdCreateLookup": 1,
        "POST /graphql SyncdIssueCreate": 1,
        "POST /graphql SyncdIssue": 1,
        "POST /graphql SyncdFindCreated": 2,
    }
    conn.create_issue("ENG", IssueDraft("Second", "b", labels=("bug",)), KEY2)
    assert fake.counts["POST /graphql SyncdCreateLookup"] == 1  # cached for the process
    assert fake.counts["POST /graphql SyncdIssueCreate"] == 2


def test_create_in_an_unknown_team_is_not_found(fake):
    with pytest.raises(NotFound, match="no Linear team with key 'OPS'"):
        connector(fake).create_issue("OPS", IssueDraft("A", "a"), KEY)
    assert fake.issues == {}


def test_crash_after_create_before_answer_then_find_created_finds_it(fake):
    """The create lands but its answer is lost (cut short); the process dies with the
    outbox action 'sending'. After the restart, find_created sees the issue at once and
    delivery does not send the create again: one issue, not two."""
    fake.inject("truncate", "SyncdIssueCreate", count=1)
    before = connector(fake, max_attempts=1)
    with pytest.raises(TransientError) as info:
        before.create_issue("ENG", IssueDraft("Lost answer", "x"), KEY)
    assert info.value.maybe_applied
    assert len(issues_titled(fake, "Lost answer")) == 1  # it did land

    after = connector(fake)  # a new process: nothing cached
    found = after.find_created("ENG", KEY)
    assert found == created_issue_id(KEY) and after.get_issue(found).title == "Lost answer"
    assert fake.counts["POST /graphql SyncdIssueCreate"] == 1
    assert len(issues_titled(fake, "Lost answer")) == 1


def test_a_create_sent_again_after_a_lost_answer_makes_no_second_issue(fake):
    """Even when the create is sent again (the retry inside the HTTP layer, or delivery
    without checking first), the chosen id makes the second one a refusal, answered
    with the issue the first one made."""
    fake.inject("truncate", "SyncdIssueCreate", count=1)
    result = connector(fake).create_issue("ENG", IssueDraft("Sent twice", "x"), KEY)
    assert result.id == created_issue_id(KEY)
    assert fake.counts["POST /graphql SyncdIssueCreate"] == 2
    assert len(issues_titled(fake, "Sent twice")) == 1
    again = connector(fake).create_issue("ENG", IssueDraft("Sent twice", "x"), KEY)
    assert again.id == result.id and len(issues_titled(fake, "Sent twice")) == 1


def test_upsert_comment_end_to_end(fake):
    issue = fake.create_issue("ENG", "Export fails")
    fake.add_comment(issue, "Looking into it <!-- syncd:demand -->", user=fake.ada)  # a person, not syncd
    conn = connector(fake)
    first = conn.upsert_comment("ENG-1", "2 tickets from 2 organisations", KEY, "demand")
    ours = [c for c in fake.issue(issue["id"])["comments"] if c["userId"] == fake.api_user["id"]]
    assert [c["id"] for c in ours] == [first.id]
    assert conn.find_marker(issue["id"], KEY) is True

    fake.reset_counts()
    second = conn.upsert_comment("ENG-1", "3 tickets from 2 organisations", KEY2, "demand")
    assert second.id == first.id
    assert fake.comments[first.id]["body"].startswith("3 tickets") and conn.find_marker(issue["id"], KEY2)
    assert fake.counts == {"POST /graphql SyncdCommentUpdate": 1, "POST /graphql SyncdFindMarker": 1}

    # A new process finds the same comment by its marker; a deleted one is made again.
    fresh = connector(fake)
    assert fresh.upsert_comment("ENG-1", "4 tickets", KEY, "demand").id == first.id
    fake.delete_comment(first.id)
    remade = fresh.upsert_comment("ENG-1", "5 tickets", KEY2, "demand")
    assert remade.id != first.id and fake.comments[remade.id]["body"].startswith("5 tickets")
    assert len([c for c in fake.comments.values() if c["userId"] == fake.api_user["id"]]) == 1


def test_the_feed_tells_syncds_own_demand_comment_and_the_batch_writes_it_without_a_look(fake):
    """The sandbox answers the feed's slot selection with syncd's own comments only (a
    person copying the marker does not count), and the batch then creates or edits."""
    from connectors.base import BatchedWrite, SlotRecord
    from syncd.writes import UpsertComment

    copied = fake.create_issue("ENG", "Export fails")
    fake.add_comment(copied, "me too <!-- syncd:demand -->", user=fake.ada)
    kept = fake.create_issue("ENG", "Import fails")
    ours = fake.add_comment(kept, "1 ticket\n\n<!-- syncd:demand -->")
    conn = connector(fake, kept_slots=("demand",))
    list(conn.poll(None))
    fake.reset_counts()
    writes = [
        BatchedWrite(copied["id"], KEY, UpsertComment("demand", "2 tickets"), SlotRecord(written=False)),
        BatchedWrite(kept["id"], KEY2, UpsertComment("demand", "3 tickets"), SlotRecord(written=False)),
    ]
    made, edited = conn.send_batch(writes)
    assert fake.counts == {"POST /graphql SyncdWrites": 1}
    assert edited.id == ours["id"] and fake.comments[ours["id"]]["body"].startswith("3 tickets")
    mine = [c for c in fake.issue(copied["id"])["comments"] if c["userId"] == fake.api_user["id"]]
    assert [c["id"] for c in mine] == [made.id] and mine[0]["body"].startswith("2 tickets")
    assert conn.landed_batch(writes) == [True, True]
