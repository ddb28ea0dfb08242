"""Several comments and attachments in one GraphQL document (Tracker.send_batch), and the
markers of an interrupted batch looked for in one request (Tracker.landed_batch):
the connector against the Linear fake over real HTTP, which runs the aliased document."""

from __future__ import annotations

import pytest
import requests

from connectors.base import BatchedWrite, marker_token
from connectors.linear.connector import WRITE_BATCH, LinearConfig, LinearConnector
from connectors.linear.fake import MAX_QUERY_COMPLEXITY, SANDBOX_API_KEY, LinearFake
from syncd.errors import Gone, TransientError
from syncd.sandbox.server import Sandbox
from syncd.writes import AttachTicket, IssueComment


@pytest.fixture
def fake(clock):
    lin = LinearFake(clock=clock)
    lin.add_team("ENG", "Engineering")
    with Sandbox([lin]):
        yield lin


@pytest.fixture
def conn(fake, clock):
    connector = LinearConnector(
        "linear",
        LinearConfig(kind="linear", url=fake.base_url, api_key=SANDBOX_API_KEY, teams=["ENG"]),
        sleep=lambda s: None,
        clock=clock,
    )
    yield connector
    connector.close()


def key(n: int) -> str:
    return f"{n:020x}"


def attach(issue: str, n: int) -> BatchedWrite:
    return BatchedWrite(issue, key(n), AttachTicket(f"https://acme.example/agent/tickets/{n}", f"Ticket #{n}", "one"))


def sent(fake: LinearFake) -> dict[str, int]:
    return {k: v for k, v in fake.counts.items() if v}


def test_a_batch_is_one_request_and_each_write_keeps_its_marker(fake, conn):
    issues = [fake.issue(fake.create_issue("ENG", f"Defect {i}"))["identifier"] for i in range(3)]
    writes = [attach(issues[i % 3], i) for i in range(10)] + [BatchedWrite(issues[0], key(99), IssueComment("Hello"))]
    fake.reset_counts()
    results = conn.send_batch(writes)
    assert sent(fake) == {"POST /graphql SyncdWrites": 1}
    assert all(r.id for r in results if not isinstance(r, Exception)) and len(results) == 11
    assert [a["metadata"]["syncd"] for a in fake.issue(issues[1])["attachments"]] == [key(1), key(4), key(7)]
    comment = fake.issue(issues[0])["comments"][-1]
    assert comment["body"].startswith("Hello") and marker_token(key(99)) in comment["body"]
    # sent again (after a crash): attachments are idempotent per URL, so nothing is added
    conn.send_batch(writes[:10])
    assert len(fake.issue(issues[1])["attachments"]) == 3


def test_a_refused_write_gets_its_error_and_the_ones_after_it_are_uncertain(fake, conn):
    kept = fake.issue(fake.create_issue("ENG", "Kept"))["identifier"]
    purged = fake.issue(fake.create_issue("ENG", "Purged"))
    fake.delete_issue(purged["id"], purge=True)
    writes = [attach(kept, 1), attach(purged["id"], 2), attach(kept, 3)]
    results = conn.send_batch(writes)
    # one refused mutation nulls the whole answer: the others' fate is unknown
    assert isinstance(results[1], Gone)
    assert all(isinstance(results[n], TransientError) and results[n].maybe_applied for n in (0, 2))
    # which landed: the first did, the third was never run; the purged issue nulls the
    # first answer as it did the batch's, so the query is asked once more without it
    fake.reset_counts()
    assert conn.landed_batch(writes) == [True, False, False]
    assert sent(fake) == {"POST /graphql SyncdFindMarkers": 2}
    fake.reset_counts()
    assert conn.landed_batch([writes[0], writes[2]]) == [True, False]
    assert sent(fake) == {"POST /graphql SyncdFindMarkers": 1}


def test_landed_batch_finds_comments_and_attachments_by_marker(fake, conn):
    issue = fake.issue(fake.create_issue("ENG", "Defect"))["identifier"]
    writes = [attach(issue, 1), BatchedWrite(issue, key(2), IssueComment("note")), attach(issue, 3)]
    conn.send_batch(writes[:2])
    fake.reset_counts()
    assert conn.landed_batch(writes) == [True, True, False]
    assert sent(fake) == {"POST /graphql SyncdFindMarkers": 1}


def test_the_largest_batch_and_its_marker_lookup_fit_linears_complexity_cap(fake, conn):
    issue = fake.issue(fake.create_issue("ENG", "Defect"))["identifier"]
    writes = [attach(issue, n) for n in range(WRITE_BATCH)]
    assert all(not isinstance(r, Exception) for r in conn.send_batch(writes))
    assert all(conn.landed_batch(writes))
    with pytest.raises(ValueError):
        conn.send_batch(writes + [attach(issue, WRITE_BATCH)])


def test_the_fake_refuses_a_document_above_the_complexity_cap(fake):
    # 300 issues' attachments at 50 a page: about 300 × 61 points.
    fields = " ".join(f"m{n}: issue(id: $id) {{ attachments(first: 50) {{ nodes {{ id }} }} }}" for n in range(300))
    body = {"query": f"query Big($id: String!) {{ {fields} }}", "variables": {"id": "x"}, "operationName": "Big"}
    answer = requests.post(fake.base_url + "/graphql", json=body, headers={"Authorization": SANDBOX_API_KEY}, timeout=5)
    assert answer.status_code == 400
    assert f"at most {MAX_QUERY_COMPLEXITY}" in answer.json()["errors"][0]["message"]
