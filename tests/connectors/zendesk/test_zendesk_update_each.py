"""A different update on each of many tickets (ZendeskConnector.update_each):
Update Many with a body per ticket, the jobs polled together. HTTP mocked by ``responses``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import responses

from connectors.base import TicketWrite, WriteResult, marker_token
from connectors.zendesk.connector import JOBS_PATH, ZendeskConfig, ZendeskConnector
from syncd.errors import ApiError, NotFound, TransientError
from syncd.records import idempotency_key
from syncd.writes import TicketUpdate

BASE = "https://acme.zendesk.com"


def make(sleeps: list[float]) -> ZendeskConnector:
    config = ZendeskConfig(kind="zendesk", url=BASE, email="ops@acme.test", token="t0ken-value")
    return ZendeskConnector(
        "zd", config, sleep=sleeps.append, clock=lambda: datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    )


def job(job_id: str, status: str, ids=(), failed: dict[int, str] | None = None) -> dict:
    results = [
        {"id": i, "action": "update", "status": "Updated", "success": True}
        if i not in (failed or {})
        else {"id": i, "action": "update", "success": False, "error": (failed or {})[i], "details": "x"}
        for i in ids
    ]
    return {
        "id": job_id,
        "url": f"{BASE}/api/v2/job_statuses/{job_id}.json",
        "job_type": "bulk_update",
        "total": len(ids),
        "status": status,
        "results": results if status == "completed" else None,
    }


def key(i: int) -> str:
    return idempotency_key("note", str(i))


def writes(ids) -> list[TicketWrite]:
    return [
        TicketWrite(
            str(i), TicketUpdate(note=f"note for {i}", add_tags=("syncd_linked",), fields={"77": f"v{i}"}), key(i)
        )
        for i in ids
    ]


@responses.activate
def test_a_body_per_ticket_100_a_request_and_the_jobs_polled_together():
    ids = list(range(1, 151))
    responses.put(BASE + "/api/v2/tickets/update_many", json={"job_status": job("J1", "queued")})
    responses.put(BASE + "/api/v2/tickets/update_many", json={"job_status": job("J2", "queued")})
    responses.get(BASE + JOBS_PATH, json={"job_statuses": [job("J1", "working"), job("J2", "working")]})
    responses.get(
        BASE + JOBS_PATH,
        json={
            "job_statuses": [
                job("J1", "completed", ids[:100], failed={6: "TicketNotFound"}),
                job("J2", "completed", ids[100:]),
            ]
        },
    )
    sleeps: list[float] = []
    results = make(sleeps).update_each(writes(ids))

    puts = [c for c in responses.calls if c.request.method == "PUT"]
    bodies = [json.loads(c.request.body)["tickets"] for c in puts]
    assert [len(b) for b in bodies] == [100, 50]
    assert all(not parse_qs(urlsplit(c.request.url).query) for c in puts)  # no ids=: the bodies say
    first = bodies[0][0]
    assert first["id"] == 1 and first["comment"]["public"] is False
    assert first["comment"]["body"] == f"note for 1\n\n[{marker_token(key(1))}]"  # its own marker
    assert bodies[1][-1]["comment"]["body"].endswith(f"[{marker_token(key(150))}]")
    assert first["additional_tags"] == ["syncd_linked"] and "tags" not in first
    assert first["custom_fields"] == [{"id": 77, "value": "v1"}]
    polls = [c for c in responses.calls if c.request.method == "GET"]
    assert len(polls) == 2  # both jobs in each poll, not a poll per job
    assert parse_qs(urlsplit(polls[0].request.url).query)["ids"] == ["J1,J2"]
    assert sleeps == [1.0, 2.0]
    assert isinstance(results["1"], WriteResult) and results["1"].id == "1"
    assert isinstance(results["6"], NotFound)
    assert all(isinstance(results[str(i)], WriteResult) for i in ids[100:])


@responses.activate
def test_a_job_that_cannot_be_followed_leaves_its_tickets_maybe_written():
    responses.put(BASE + "/api/v2/tickets/update_many", json={"job_status": job("J1", "queued")})
    responses.get(BASE + JOBS_PATH, status=400, json={"error": "InvalidValue", "description": "no"})
    results = make([]).update_each(writes([1, 2]))
    for tid in ("1", "2"):
        outcome = results[tid]
        assert isinstance(outcome, TransientError) and outcome.maybe_applied  # its marker is looked for next


@responses.activate
def test_a_refused_request_reports_each_ticket_and_conditional_statuses_go_alone():
    responses.put(BASE + "/api/v2/tickets/update_many", status=400, json={"error": "InvalidValue", "description": "x"})
    current = {
        "id": 3,
        "status": "pending",
        "tags": [],
        "custom_fields": [],
        "created_at": "2026-03-01T00:00:00Z",
        "updated_at": "2026-03-01T00:00:00Z",
    }
    responses.get(BASE + "/api/v2/tickets/3", json={"ticket": current})
    responses.put(BASE + "/api/v2/tickets/3", json={"ticket": {**current, "status": "open"}})
    conditional = TicketWrite("3", TicketUpdate(status="open", status_from=("pending",)), key(3))
    results = make([]).update_each([*writes([1, 2]), conditional])
    assert isinstance(results["1"], ApiError) and isinstance(results["2"], ApiError)
    assert isinstance(results["3"], WriteResult)
    single = [c for c in responses.calls if urlsplit(c.request.url).path == "/api/v2/tickets/3"]
    assert [c.request.method for c in single] == ["GET", "PUT"]
    assert json.loads(single[1].request.body)["ticket"]["status"] == "open"
