"""The Zendesk connector against recorded real traffic (../shared/fixtures) and
hand-made edge cases, with HTTP mocked by ``responses``."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import ValidationError

from connectors.base import WriteResult, marker_token
from connectors.zendesk.connector import EXPORT_PATH, ZendeskConfig, ZendeskConnector
from syncd.errors import ApiError, AuthError, ConfigError, Conflict, NotFound, PayloadError
from syncd.records import Ref, idempotency_key
from syncd.writes import TicketUpdate
from tests.conftest import FIXTURES, require_shared

BASE = "https://acme.zendesk.com"
NOW = 1_700_000_000.0
KEY = idempotency_key("link", "resolved")


def recorded(name: str) -> list[dict]:
    """The interactions of one decoded zenpy cassette."""
    path = require_shared(FIXTURES / "zendesk" / "decoded" / f"{name}.decoded.json")
    return json.loads(path.read_text())


def body_of(name: str, index: int) -> dict:
    return copy.deepcopy(recorded(name)[index]["response_body"])


def make(sleeps: list[float] | None = None, **overrides) -> ZendeskConnector:
    settings = {"kind": "zendesk", "url": BASE, "email": "ops@acme.test", "token": "t0ken-value", **overrides}
    sink = sleeps if sleeps is not None else []
    connector = ZendeskConnector(
        "zd", ZendeskConfig(**settings), sleep=sink.append, clock=lambda: datetime.fromtimestamp(NOW, timezone.utc)
    )
    return connector


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def path(call) -> str:
    return urlsplit(call.request.url).path


def export_url() -> str:
    return BASE + EXPORT_PATH


# -- config ---------------------------------------------------------------------


def test_config_without_credentials_names_the_keys_to_set():
    with pytest.raises(ValidationError) as info:
        ZendeskConfig(kind="zendesk", url=BASE)
    text = str(info.value)
    assert "token_file" in text and "oauth_token" in text and "SYNCD_CONNECTORS__" in text


def test_config_token_needs_email():
    with pytest.raises(ValidationError, match="set email"):
        ZendeskConfig(kind="zendesk", url=BASE, token="x")


def test_config_unreadable_token_file_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ValidationError, match="token_file .*nope.* cannot be read"):
        ZendeskConfig(kind="zendesk", url=BASE, email="a@b.c", token_file=str(missing))


def test_config_token_file_and_oauth_auth(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    config = ZendeskConfig(kind="zendesk", url=BASE, email="a@b.c", token_file=str(secret))
    assert config.auth() == (("a@b.c/token", "from-file"), {})
    oauth = ZendeskConfig(kind="zendesk", url=BASE, oauth_token="bearer-value")
    assert oauth.auth() == (None, {"Authorization": "Bearer bearer-value"})
    assert "bearer-value" not in repr(oauth) and "from-file" not in repr(config)


def test_config_page_size_is_capped():
    with pytest.raises(ValidationError):
        ZendeskConfig(kind="zendesk", url=BASE, email="a@b.c", token="x", page_size=1001)


# -- check ----------------------------------------------------------------------


@responses.activate
def test_check_reports_admin_and_sends_basic_auth():
    responses.get(
        BASE + "/api/v2/users/me", json={"user": {"id": 5, "name": "Ops", "email": "ops@acme.test", "role": "admin"}}
    )
    assert make().check() == "Ops <ops@acme.test> (admin)"
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_check_warns_agent_that_export_needs_admin():
    responses.get(BASE + "/api/v2/users/me", json={"user": {"id": 5, "name": "A", "email": "a@x", "role": "agent"}})
    assert "needs an admin" in make().check()


@responses.activate
def test_check_anonymous_user_means_credentials_refused():
    responses.get(BASE + "/api/v2/users/me", json={"user": {"id": None, "name": "Anonymous user", "role": "end-user"}})
    with pytest.raises(AuthError, match="anonymous"):
        make().check()


@responses.activate
def test_401_is_auth_error_without_the_secret():
    responses.get(BASE + "/api/v2/users/me", status=401, json={"error": "Couldn't authenticate you"})
    with pytest.raises(AuthError) as info:
        make().check()
    assert "t0ken-value" not in str(info.value)


# -- poll -----------------------------------------------------------------------


@responses.activate
def test_poll_normalises_a_recorded_export_page():
    body = body_of("TicketsIncrementalTest.test_get_values", 1)  # 87 tickets, one deleted, end_of_stream
    responses.get(export_url(), json=body)
    pages = list(make().poll(None))

    assert len(pages) == 1 and pages[0].done
    page = pages[0]
    live = [t for t in body["tickets"] if t["status"] != "deleted"]
    assert [t.ref for t in page.records] == [Ref("zd", str(t["id"])) for t in live]
    assert page.rejected == []
    assert json.loads(page.cursor) == {"cursor": body["after_cursor"]}

    raw = next(t for t in live if t["tags"])
    ticket = next(t for t in page.records if t.ref.id == str(raw["id"]))
    assert ticket.key == f"#{raw['id']}"
    assert ticket.url == f"{BASE}/agent/tickets/{raw['id']}"
    assert ticket.subject == raw["subject"] and ticket.status == raw["status"]
    assert ticket.tags == tuple(raw["tags"])
    assert ticket.updated_at == datetime.fromisoformat(raw["updated_at"].replace("Z", "+00:00"))
    assert ticket.requester.id == str(raw["requester_id"])
    assert ticket.description == raw["description"]

    params = query(responses.calls[0])
    assert params["start_time"] == [str(int(NOW - 30 * 86400))]
    assert params["include"] == ["users,organizations"] and params["per_page"] == ["1000"]
    assert "cursor" not in params


@responses.activate
def test_poll_maps_sideloaded_users_organizations_and_custom_fields():
    body = body_of("TicketsIncrementalTest.test_get_values", 1)
    raw = next(t for t in body["tickets"] if t["organization_id"] and t["status"] != "deleted")
    raw["custom_fields"] = [{"id": 360001, "value": "ENG-12"}, {"id": 360002, "value": None}]
    body["users"] = [
        {
            "id": raw["requester_id"],
            "name": "Ada",
            "email": "ada@customer.test",
            "organization_id": raw["organization_id"],
        }
    ]
    body["organizations"] = [
        {"id": raw["organization_id"], "name": "Customer Ltd", "organization_fields": {"plan": "enterprise"}}
    ]
    responses.get(export_url(), json=body)
    ticket = next(t for t in next(make().poll(None)).records if t.ref.id == str(raw["id"]))
    assert ticket.requester.name == "Ada" and ticket.requester.email == "ada@customer.test"
    assert ticket.organization.id == str(raw["organization_id"]) and ticket.organization.name == "Customer Ltd"
    assert ticket.organization.tier == "enterprise"
    assert ticket.fields == {"360001": "ENG-12", "360002": None}


@responses.activate
def test_poll_follows_recorded_cursor_pages_and_resumes_from_the_stored_cursor():
    pages_recorded = [
        i for i in recorded("TicketsIncrementalTest.test_pagination") if "cursor.json?cursor=" in i["uri"]
    ][:3]
    bodies = [copy.deepcopy(i["response_body"]) for i in pages_recorded]
    bodies[-1]["end_of_stream"] = True
    for body in bodies:
        responses.get(export_url(), json=body)
    first_cursor = parse_qs(urlsplit(pages_recorded[0]["uri"]).query)["cursor"][0]

    pages = list(make(page_size=1).poll(json.dumps({"cursor": first_cursor})))

    assert [p.done for p in pages] == [False, False, True]
    assert [json.loads(p.cursor)["cursor"] for p in pages] == [b["after_cursor"] for b in bodies]
    sent = [query(c) for c in responses.calls]
    assert sent[0]["cursor"] == [first_cursor] and "start_time" not in sent[0]
    # Each request asks for what follows the page before: nothing skipped.
    assert [s["cursor"][0] for s in sent[1:]] == [b["after_cursor"] for b in bodies[:-1]]
    assert [t.ref.id for p in pages for t in p.records] == [str(b["tickets"][0]["id"]) for b in bodies]


@responses.activate
def test_resume_after_a_crash_asks_for_the_page_after_the_committed_one():
    bodies = [
        body_of("TicketsIncrementalTest.test_get_values", 3),
        body_of("TicketsIncrementalTest.test_get_values", 1),
    ]
    for body in bodies:
        responses.get(export_url(), json=body)
    committed = next(make(page_size=1).poll(None)).cursor  # the engine stores this, then crashes
    list(make(page_size=1).poll(committed))
    assert query(responses.calls[1])["cursor"] == [bodies[0]["after_cursor"]]


def test_poll_rejects_a_cursor_it_did_not_write():
    with pytest.raises(ConfigError, match="not a Zendesk export cursor"):
        next(make().poll("garbage"))


@responses.activate
def test_malformed_tickets_are_rejected_with_reason_and_the_page_goes_on():
    body = body_of("TicketsIncrementalTest.test_get_values", 1)
    live = [t for t in body["tickets"] if t["status"] != "deleted"]
    live[0]["updated_at"] = "yesterday"
    del live[1]["status"]
    body["tickets"].append("not a ticket")
    responses.get(export_url(), json=body)
    page = next(make().poll(None))
    assert len(page.records) == len(live) - 2
    reasons = {r.record_id: r.reason for r in page.rejected}
    assert "updated_at" in reasons[str(live[0]["id"])] and "status" in reasons[str(live[1]["id"])]
    assert reasons[None].startswith("zd: ticket: expected an object")


@responses.activate
def test_wrong_shape_page_is_a_payload_error():
    responses.get(export_url(), json={"results": []})
    with pytest.raises(PayloadError, match="no 'tickets' list"):
        next(make().poll(None))


@responses.activate
def test_429_is_retried_after_the_requested_wait():
    body = body_of("TicketsIncrementalTest.test_get_values", 1)
    responses.get(export_url(), status=429, headers={"Retry-After": "7"}, json={"error": "TooManyRequests"})
    responses.get(export_url(), json=body)
    sleeps: list[float] = []
    page = next(make(sleeps).poll(None))
    assert page.records and len(responses.calls) == 2
    assert sleeps == [7.0]


# -- reads ----------------------------------------------------------------------


@responses.activate
def test_get_ticket_from_recorded_show_ticket():
    raw = body_of("legacy-2017__TestTicketAPIMethods.test_show_ticket", 0)
    responses.get(BASE + "/api/v2/tickets/4632", json=raw)
    ticket = make().get_ticket("4632")
    assert ticket.ref == Ref("zd", "4632") and ticket.status == "open" and ticket.subject == "subject"
    assert ticket.assignee_id == "21311632247" and ticket.group_id == "41661887"
    assert ticket.organization.id == "16180288347"
    assert path(responses.calls[0]) == "/api/v2/tickets/4632"


@responses.activate
def test_recorded_404_is_not_found():
    responses.get(
        BASE + "/api/v2/tickets/1337",
        status=404,
        json=body_of("legacy-2017__TestTicketApiExceptions.test_throws_record_not_found", 0),
    )
    with pytest.raises(NotFound, match="RecordNotFound"):
        make().get_ticket("1337")


def _comments_page(comments: list[dict], after: str | None) -> dict:
    return {
        "comments": comments,
        "meta": {"has_more": after is not None, "after_cursor": after},
        "links": {"next": "https://elsewhere.zendesk.com/api/v2/ignored" if after else None},
    }


def _recorded_comment(cid: int, body: str, public: bool = True) -> dict:
    comment = body_of("legacy-2017__TestTicketAPIMethods.test_show_ticket_comments", 0)["comments"][0]
    comment.update(id=cid, body=body, public=public)
    return comment


@responses.activate
def test_comments_from_recorded_payload():
    responses.get(
        BASE + "/api/v2/tickets/4634/comments",
        json=body_of("legacy-2017__TestTicketAPIMethods.test_show_ticket_comments", 0),
    )
    [comment] = make().comments("4634")
    assert comment.id == "288845689548" and comment.body == "I am comment" and comment.public
    assert comment.author_id == "21311632247"
    assert comment.created_at == datetime(2017, 4, 19, 11, 14, 25, tzinfo=timezone.utc)
    assert query(responses.calls[0])["page[size]"] == ["100"]


@responses.activate
def test_comments_page_forward_on_our_own_host():
    responses.get(BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(1, "a")], "CUR1"))
    responses.get(BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(2, "b")], None))
    assert [c.id for c in make().comments("7")] == ["1", "2"]
    assert query(responses.calls[1])["page[after]"] == ["CUR1"]
    assert all(urlsplit(c.request.url).netloc == "acme.zendesk.com" for c in responses.calls)


@responses.activate
def test_comments_after_reads_newest_first_and_stops_at_the_known_one():
    newest = [_recorded_comment(i, f"c{i}") for i in (9, 8, 7, 6)]
    responses.get(BASE + "/api/v2/tickets/7/comments", json=_comments_page(newest, "MORE"))
    got = make().comments("7", after="7")
    assert [c.id for c in got] == ["8", "9"]  # oldest first
    assert len(responses.calls) == 1 and query(responses.calls[0])["sort"] == ["-created_at"]


# -- writes ---------------------------------------------------------------------


@responses.activate
def test_update_with_note_and_field_is_one_put_and_returns_updated_at():
    recorded_put = recorded("TestTicketCreateUpdateDelete.test_single_object_update-update-single")[1]
    responses.put(BASE + "/api/v2/tickets/4016", json=recorded_put["response_body"])
    update = TicketUpdate(note="ENG-12 moved to In Progress", fields={"360001": "In Progress"})
    result = make().update_ticket("4016", update, KEY)

    assert result == WriteResult(updated_at=datetime(2023, 9, 18, 23, 26, 1, tzinfo=timezone.utc), id="4016")
    assert len(responses.calls) == 1
    sent = json.loads(responses.calls[0].request.body)["ticket"]
    assert sent["comment"]["public"] is False
    assert sent["comment"]["body"].startswith("ENG-12 moved to In Progress\n\n")
    assert marker_token(KEY) in sent["comment"]["body"]
    assert sent["custom_fields"] == [{"id": 360001, "value": "In Progress"}]
    assert "tags" not in sent and "status" not in sent


@responses.activate
def test_recorded_404_on_update_is_not_found():
    interaction = recorded(
        "TestTicketCreateUpdateDelete.test_single_update_raises_recordnotfoundexception-recordnotfound-update"
    )[0]
    responses.put(BASE + "/api/v2/tickets/9223372036854775807", status=404, json=interaction["response_body"])
    with pytest.raises(NotFound):
        make().update_ticket("9223372036854775807", TicketUpdate(note="x"), KEY)


def _current(status: str, tags: list[str], updated_at: str = "2024-01-01T00:00:00Z") -> dict:
    raw = body_of("legacy-2017__TestTicketAPIMethods.test_show_ticket", 0)
    raw["ticket"].update(status=status, tags=tags, updated_at=updated_at)
    return raw


@responses.activate
def test_conditional_status_and_tags_use_a_safe_read_modify_write():
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("pending", ["vip", "syncd_waiting"]))
    responses.put(
        BASE + "/api/v2/tickets/4632", json=_current("open", ["vip", "syncd_resolved"], "2024-01-01T00:05:00Z")
    )
    update = TicketUpdate(
        status="open", status_from=("pending", "hold"), add_tags=("syncd_resolved",), remove_tags=("syncd_waiting",)
    )
    result = make().update_ticket("4632", update, KEY)
    sent = json.loads(responses.calls[1].request.body)["ticket"]
    assert sent == {
        "status": "open",
        "tags": ["vip", "syncd_resolved"],
        "safe_update": True,
        "updated_stamp": "2024-01-01T00:00:00Z",
    }
    assert result.updated_at == datetime(2024, 1, 1, 0, 5, tzinfo=timezone.utc)


@responses.activate
def test_status_is_left_alone_when_the_ticket_is_not_in_status_from():
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("solved", []))
    responses.put(BASE + "/api/v2/tickets/4632", json=_current("solved", []))
    make().update_ticket("4632", TicketUpdate(note="done", status="open", status_from=("pending",)), KEY)
    sent = json.loads(responses.calls[1].request.body)["ticket"]
    assert "status" not in sent and "comment" in sent


@responses.activate
def test_nothing_to_change_sends_no_write():
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("open", ["a"]))
    result = make().update_ticket("4632", TicketUpdate(add_tags=("a",)), KEY)
    assert len(responses.calls) == 1 and result.id == "4632"


@responses.activate
def test_a_concurrent_change_is_read_again_not_clobbered():
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("open", ["a"]))
    responses.put(BASE + "/api/v2/tickets/4632", status=409, json={"error": "UpdateConflict"})
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("open", ["a", "b"], "2024-01-01T00:01:00Z"))
    responses.put(BASE + "/api/v2/tickets/4632", json=_current("open", ["a", "b", "c"]))
    make().update_ticket("4632", TicketUpdate(add_tags=("c",)), KEY)
    last = json.loads(responses.calls[3].request.body)["ticket"]
    assert last["tags"] == ["a", "b", "c"] and last["updated_stamp"] == "2024-01-01T00:01:00Z"


@responses.activate
def test_closed_ticket_is_a_conflict():
    responses.get(BASE + "/api/v2/tickets/4632", json=_current("closed", []))
    with pytest.raises(Conflict, match="closed"):
        make().update_ticket("4632", TicketUpdate(add_tags=("x",)), KEY)
    assert len(responses.calls) == 1


@responses.activate
def test_422_on_a_plain_update_is_a_conflict_naming_the_ticket():
    responses.put(
        BASE + "/api/v2/tickets/4632",
        status=422,
        json={"error": "RecordInvalid", "description": "Status: closed prevents ticket update"},
    )
    with pytest.raises(Conflict, match="ticket 4632"):
        make().update_ticket("4632", TicketUpdate(note="x"), KEY)


@responses.activate
def test_marker_written_by_a_note_is_found_again():
    responses.put(BASE + "/api/v2/tickets/7", json=_current("open", []))
    make().update_ticket("7", TicketUpdate(note="Linked to ENG-12"), KEY)
    written = json.loads(responses.calls[0].request.body)["ticket"]["comment"]["body"]

    responses.get(
        BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(3, written, public=False)], "MORE")
    )
    responses.get(BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(2, "older")], None))
    connector = make()
    assert connector.find_marker("7", KEY) is True
    assert len(responses.calls) == 2  # the write, then one page: stopped at the first hit

    responses.reset()
    responses.get(
        BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(3, written, public=False)], "MORE")
    )
    responses.get(BASE + "/api/v2/tickets/7/comments", json=_comments_page([_recorded_comment(2, "older")], None))
    assert connector.find_marker("7", idempotency_key("other")) is False
    assert len(responses.calls) == 2  # an absent marker reads every page


# -- bulk -----------------------------------------------------------------------


def _job(job_id: str, status: str, results=None) -> dict:
    body = body_of("TestTicketCreateUpdateDelete.test_multiple_update_single_object-update-many", 4)
    body["job_status"].update(id=job_id, status=status, results=results)
    return body


@responses.activate
def test_bulk_update_uses_update_many_per_100_and_polls_the_jobs_together():
    ids = [str(i) for i in range(1, 151)]
    queued = body_of("TestTicketCreateUpdateDelete.test_multiple_update_single_object-update-many", 3)
    completed = body_of("TestTicketCreateUpdateDelete.test_multiple_update_single_object-update-many", 4)
    job_id = queued["job_status"]["id"]
    responses.put(BASE + "/api/v2/tickets/update_many", json=queued)
    responses.put(BASE + "/api/v2/tickets/update_many", json=_job("JOB2", "completed", []))
    done = [{"action": "update", "status": "Updated", "success": True, "id": int(i)} for i in ids[:100]]
    done[5] = {"action": "update", "success": False, "id": 6, "error": "TicketNotFound", "details": "gone"}
    completed["job_status"]["results"] = done
    responses.get(
        f"{BASE}/api/v2/job_statuses/show_many", json={"job_statuses": [_job(job_id, "working")["job_status"]]}
    )
    responses.get(f"{BASE}/api/v2/job_statuses/show_many", json={"job_statuses": [completed["job_status"]]})
    sleeps: list[float] = []

    update = TicketUpdate(
        note="ENG-12 shipped", add_tags=("shipped",), remove_tags=("waiting",), fields={"360001": "Done"}, status="open"
    )
    results = make(sleeps).update_tickets(ids, update, KEY)

    puts = [c for c in responses.calls if c.request.method == "PUT"]
    assert [len(json.loads(c.request.body)["tickets"]) for c in puts] == [100, 50]
    sent = json.loads(puts[0].request.body)["tickets"][0]
    assert sent["id"] == 1 and sent["additional_tags"] == ["shipped"] and sent["remove_tags"] == ["waiting"]
    assert sent["status"] == "open" and marker_token(KEY) in sent["comment"]["body"]
    assert "tags" not in sent
    assert isinstance(results["1"], WriteResult) and results["1"].id == "1"
    assert isinstance(results["6"], NotFound)
    # The second job completed with no per-ticket results: each is reported, none is silently OK.
    assert all(isinstance(results[i], ApiError) for i in ids[100:])
    assert sleeps == [1.0, 2.0]
    assert len(responses.calls) == 4
    assert query(responses.calls[2])["ids"] == [job_id]


@responses.activate
def test_bulk_with_conditional_status_goes_ticket_by_ticket():
    for tid in ("1", "2"):
        responses.get(f"{BASE}/api/v2/tickets/{tid}", json=_current("pending", []))
        responses.put(f"{BASE}/api/v2/tickets/{tid}", json=_current("open", []))
    results = make().update_tickets(["1", "2"], TicketUpdate(status="open", status_from=("pending",)), KEY)
    assert all(isinstance(r, WriteResult) for r in results.values())
    assert not any("update_many" in c.request.url for c in responses.calls)


def test_ticket_url_pattern_matches_only_this_instance():
    import re

    pattern = re.compile(make().ticket_url_pattern())
    assert pattern.search("see https://acme.zendesk.com/agent/tickets/123 now").group("id") == "123"
    assert pattern.search("http://acme.zendesk.com/agent/tickets/9").group("id") == "9"
    assert pattern.search("https://other.zendesk.com/agent/tickets/123") is None
    assert make(link_field_id=77).link_fields() == ("77",)
    assert make().link_fields() == ()
