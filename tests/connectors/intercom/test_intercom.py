"""The Intercom connector against ``responses`` mocks: normalisation, the feed, writes, config."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import responses
from pydantic import ValidationError

from connectors.base import TICKET_STATUSES, marker_token
from connectors.intercom.connector import (
    IntercomConfig,
    IntercomConnector,
    html_text,
    note_html,
)
from syncd.errors import ConfigError, NotFound, RateLimited
from syncd.writes import TicketUpdate

API = "https://api.intercom.io"
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)
T0 = int(NOW.timestamp())
KEY = "0123456789abcdef0123"


def make(**extra) -> IntercomConnector:
    options = {"kind": "intercom", "token": "tok", "workspace_id": "abc123", "max_attempts": 1, **extra}
    return IntercomConnector("helpdesk", IntercomConfig(**options), sleep=lambda s: None, clock=lambda: NOW)


def ticket(tid: str = "101", *, updated: int = T0 - 10, category: str = "in_progress", **extra) -> dict:
    return {
        "type": "ticket",
        "id": tid,
        "ticket_id": "7",
        "category": "Customer",
        "ticket_attributes": {"_default_title_": "SSO loop", "_default_description_": "<p>It loops</p>"},
        "ticket_state": {"type": "ticket_state", "id": "4002", "category": category, "internal_label": "x"},
        "ticket_type": {"type": "ticket_type", "id": "61", "name": "Customer request"},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "ct1"}]},
        "admin_assignee_id": "900",
        "team_assignee_id": "0",
        "created_at": T0 - 1000,
        "updated_at": updated,
        "open": True,
        "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 1},
        **extra,
    }


def conversation(cid: str = "101", *, tags=("vip",), parts=None, updated: int = T0 - 10, **extra) -> dict:
    return {
        "type": "conversation",
        "id": cid,
        "created_at": T0 - 1000,
        "updated_at": updated,
        "open": True,
        "state": "open",
        "admin_assignee_id": 900,
        "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": str(i), "name": n} for i, n in enumerate(tags)]},
        "company": {
            "type": "company",
            "id": "co1",
            "name": "Northwind",
            "plan": {"type": "plan", "name": "enterprise"},
        },
        "source": {"type": "conversation", "id": "500", "body": "<p>It loops, see ENG-12</p>", "author": {"id": "ct1"}},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "ct1"}]},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts
            if parts is not None
            else [
                {
                    "type": "conversation_part",
                    "id": "501",
                    "part_type": "note",
                    "body": '<p>See <a href="https://linear.app/acme/issue/ENG-13">this</a> &amp; more</p>',
                    "created_at": T0 - 900,
                    "author": {"type": "admin", "id": "900", "name": "Priya Raman"},
                }
            ],
        },
        **extra,
    }


def contact() -> dict:
    return {"type": "contact", "id": "ct1", "name": "Hannah", "email": "hannah@northwind.example"}


def search_body(*tickets: dict, next_cursor: str | None = None) -> dict:
    pages: dict = {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1}
    if next_cursor:
        pages["next"] = {"per_page": 150, "starting_after": next_cursor}
    return {"type": "ticket.list", "tickets": list(tickets), "total_count": len(tickets), "pages": pages}


def sent(call) -> dict:
    return json.loads(call.request.body)


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, api, app",
    [
        ("us", "https://api.intercom.io", "https://app.intercom.com"),
        ("eu", "https://api.eu.intercom.io", "https://app.eu.intercom.com"),
        ("au", "https://api.au.intercom.io", "https://app.au.intercom.com"),
    ],
)
def test_the_region_sets_the_hosts(region, api, app):
    config = IntercomConfig(kind="intercom", region=region, token="t", workspace_id="abc123")
    assert (config.url, config.app_url) == (api, app)
    connector = IntercomConnector("h", config)
    assert connector.ticket_url("42") == f"{app}/a/inbox/abc123/inbox/conversation/42"


def test_a_url_given_wins_over_the_region():
    config = IntercomConfig(kind="intercom", region="eu", url="http://127.0.0.1:9", token="t", workspace_id="w")
    assert config.url == "http://127.0.0.1:9" and config.app_url == "https://app.eu.intercom.com"


def test_credentials_and_page_size_are_checked():
    with pytest.raises(ValidationError, match="no credentials"):
        IntercomConfig(kind="intercom", workspace_id="w")
    with pytest.raises(ValidationError, match="less than or equal to 150"):
        IntercomConfig(kind="intercom", token="t", workspace_id="w", page_size=151)
    with pytest.raises(ValidationError, match="region"):
        IntercomConfig(kind="intercom", token="t", workspace_id="w", region="mars")


def test_ticket_urls_are_found_in_text():
    import re

    pattern = re.compile(make().ticket_url_pattern())
    found = pattern.search("see https://app.intercom.com/a/inbox/abc123/inbox/conversation/215470000001 please")
    assert found and found.group("id") == "215470000001"
    assert not pattern.search("https://app.intercom.com/a/inbox/other/inbox/conversation/1")


# -- check ----------------------------------------------------------------------------------------


def ticket_types(*attributes: tuple[str, str]) -> dict:
    listed = [
        {"type": "ticket_type_attribute", "id": str(i), "name": n, "data_type": t}
        for i, (n, t) in enumerate(attributes)
    ]
    return {
        "type": "list",
        "data": [
            {
                "type": "ticket_type",
                "id": "61",
                "name": "Customer request",
                "archived": False,
                "ticket_type_attributes": {"type": "ticket_type_attributes.list", "ticket_type_attributes": listed},
            }
        ],
    }


@responses.activate
def test_check_names_the_admin_and_checks_the_attributes():
    responses.get(
        f"{API}/me",
        json={"type": "admin", "id": "900", "name": "syncd", "email": "bot@x", "app": {"id_code": "abc123"}},
    )
    responses.get(f"{API}/ticket_types", json=ticket_types(("Linked issue status", "string"), ("Stage", "string")))
    who = make(status_attribute="Linked issue status", stage_attribute="Stage").check()
    assert "syncd" in who and "900" in who
    assert responses.calls[0].request.headers["Intercom-Version"] == "2.15"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"


@responses.activate
def test_check_refuses_a_missing_or_unfit_attribute():
    responses.get(f"{API}/me", json={"type": "admin", "id": "900", "app": {"id_code": "abc123"}})
    responses.get(f"{API}/ticket_types", json=ticket_types(("Stage", "list")))
    with pytest.raises(ConfigError) as caught:
        make(status_attribute="Linked issue status", stage_attribute="Stage").check()
    text = str(caught.value)
    assert "status_attribute 'Linked issue status' is not an attribute of any ticket type" in text
    assert "stage_attribute 'Stage' is a list attribute" in text


@responses.activate
def test_check_refuses_another_workspace():
    responses.get(f"{API}/me", json={"type": "admin", "id": "900", "app": {"id_code": "zzz999"}})
    with pytest.raises(ConfigError, match="set workspace_id = 'zzz999'"):
        make().check()


# -- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "category, extra, status",
    [
        ("submitted", {"admin_assignee_id": "0"}, "new"),
        ("submitted", {}, "open"),
        ("in_progress", {}, "open"),
        ("in_progress", {"snoozed_until": T0 + 3600}, "hold"),
        ("waiting_on_customer", {}, "pending"),
        ("resolved", {"open": False}, "solved"),
        ("in_progress", {"open": False}, "solved"),
    ],
)
@responses.activate
def test_states_map_onto_the_canonical_statuses(category, extra, status):
    responses.get(f"{API}/tickets/101", json=ticket(category=category, **extra))
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    got = make().get_ticket("101")
    assert got.status == status and status in TICKET_STATUSES
    assert got.can_update  # nothing in Intercom refuses updates for good


@responses.activate
def test_a_ticket_reads_as_the_handoff_needs_it():
    responses.get(
        f"{API}/tickets/101", json=ticket(ticket_attributes={"_default_title_": "SSO loop", "Linked issue": "ENG-9"})
    )
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    got = make().get_ticket("101")
    assert got.key == "#7" and got.subject == "SSO loop"
    assert got.requester and got.requester.email == "hannah@northwind.example"
    assert got.organization and (got.organization.name, got.organization.tier) == ("Northwind", "enterprise")
    assert (got.assignee_id, got.assignee_name) == ("900", "Priya Raman")
    assert got.tags == ("vip",) and got.fields["Linked issue"] == "ENG-9" and got.form_id == "61"
    assert got.url == "https://app.intercom.com/a/inbox/abc123/inbox/conversation/101"


@responses.activate
def test_comments_are_text_with_link_targets_kept_and_notes_private():
    responses.get(f"{API}/conversations/101", json=conversation())
    comments = make().comments("101")
    assert [c.id for c in comments] == ["500", "501"]
    assert comments[0].public and not comments[1].public
    assert "https://linear.app/acme/issue/ENG-13" in comments[1].body and "& more" in comments[1].body
    assert [c.id for c in make().comments("101", after="500")] == ["501"]


def test_html_text_and_note_html():
    assert html_text("<p>a &lt;b&gt;</p><p>c</p>") == "a <b>\n\nc"
    assert note_html("one\ntwo\n\nthree", KEY) == f"<p>one<br>two</p><p>three</p><p>[{marker_token(KEY)}]</p>"


# -- the feed -----------------------------------------------------------------------------------


@responses.activate
def test_the_feed_overlaps_and_an_idle_poll_is_one_request():
    first = ticket("101", updated=T0 - 5)
    responses.post(f"{API}/tickets/search", json=search_body(first))
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    connector = make(overlap_seconds=60)
    pages = list(connector.poll(None))
    assert [r.ref.id for p in pages for r in p.records] == ["101"] and pages[-1].done
    query = sent(responses.calls[0])
    assert query["query"] == {"field": "updated_at", "operator": ">", "value": T0 - 30 * 86400 - 60}
    assert query["pagination"] == {"per_page": 150}
    cursor = pages[-1].cursor
    assert json.loads(cursor)["tickets"]["since"] == T0 - 5

    responses.calls.reset()  # type: ignore[no-untyped-call]
    again = list(make(overlap_seconds=60).poll(cursor))  # a new process: nothing in memory
    assert [r for p in again for r in p.records] == [] and len(responses.calls) == 1
    # from the overlap before the last search's start (the clock stands still here)
    assert sent(responses.calls[0])["query"]["value"] == T0 - 60


@responses.activate
def test_a_change_in_the_same_second_is_not_lost():
    responses.post(f"{API}/tickets/search", json=search_body(ticket("101", updated=T0 - 5)))
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    cursor = list(make().poll(None))[-1].cursor
    changed = ticket("101", updated=T0 - 5, ticket_parts={"type": "ticket_part.list", "total_count": 2})
    responses.replace(responses.POST, f"{API}/tickets/search", json=search_body(changed))
    assert [r.ref.id for p in make().poll(cursor) for r in p.records] == ["101"]


@responses.activate
def test_since_moves_only_after_the_last_page():
    responses.post(
        f"{API}/tickets/search",
        json=search_body(ticket("102", updated=T0 - 2), next_cursor="abc"),
        match=[responses.matchers.json_params_matcher({"pagination": {"per_page": 150}}, strict_match=False)],
    )
    responses.post(f"{API}/tickets/search", json=search_body(ticket("101", updated=T0 - 9)))
    for tid in ("101", "102"):
        responses.get(f"{API}/conversations/{tid}", json=conversation(tid))
    responses.get(f"{API}/contacts/ct1", json=contact())
    pages = list(make().poll(None))
    assert [p.done for p in pages] == [False, True]
    middle, last = json.loads(pages[0].cursor), json.loads(pages[1].cursor)
    assert middle["tickets"]["since"] == T0 - 30 * 86400 and "102" in middle["tickets"]["seen"]
    assert last["tickets"]["since"] == T0 - 2
    assert sent(responses.calls[-2])["pagination"]["starting_after"] == "abc" or any(
        sent(c).get("pagination", {}).get("starting_after") == "abc"
        for c in responses.calls
        if c.request.method == "POST"
    )


@responses.activate
def test_a_malformed_ticket_is_rejected_and_the_rest_kept():
    bad = ticket("102")
    bad["ticket_state"] = "?"
    responses.post(f"{API}/tickets/search", json=search_body(ticket("101"), bad))
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    page = list(make().poll(None))[-1]
    assert [r.ref.id for r in page.records] == ["101"]
    assert [r.record_id for r in page.rejected] == ["102"] and "ticket_state" in page.rejected[0].reason


def test_a_cursor_of_another_connector_is_a_config_error():
    with pytest.raises(ConfigError, match="not an Intercom cursor"):
        list(make().poll('{"cursor": "abc"}'))


@responses.activate
def test_conversations_are_followed_when_turned_on():
    responses.post(f"{API}/tickets/search", json=search_body())
    responses.post(
        f"{API}/conversations/search",
        json={"type": "conversation.list", "conversations": [conversation("77")], "pages": {"type": "pages"}},
    )
    responses.get(f"{API}/conversations/77", json=conversation("77", state="snoozed"))
    responses.get(f"{API}/contacts/ct1", json=contact())
    pages = list(make(conversations=True).poll(None))
    records = [r for p in pages for r in p.records]
    assert [r.ref.id for r in records] == ["c77"] and records[0].status == "hold"
    assert [p.done for p in pages] == [False, True]


# -- writes -----------------------------------------------------------------------------------------


@responses.activate
def test_an_update_writes_the_note_last_with_its_marker():
    responses.get(f"{API}/me", json={"type": "admin", "id": "900"})
    responses.put(f"{API}/tickets/101", json=ticket(updated=T0))
    responses.get(f"{API}/tags", json={"type": "list", "data": [{"type": "tag", "id": "5", "name": "syncd_linked"}]})
    responses.post(f"{API}/tags", json={"type": "tag", "id": "6", "name": "syncd_stage_assigned"})
    responses.post(f"{API}/tickets/101/tags", json={"type": "tag", "id": "5"})
    responses.post(f"{API}/tickets/101/reply", json={"type": "ticket_part", "id": "9", "created_at": T0 + 1})
    update = TicketUpdate(
        note="Linked ENG-1 &lt;b&gt;",
        fields={"Linked issue status": "ENG-1: Todo"},
        add_tags=("syncd_linked", "syncd_stage_assigned"),
    )
    result = make().update_ticket("101", update, KEY)
    paths = [(c.request.method, c.request.url.removeprefix(API)) for c in responses.calls]
    assert paths == [
        ("GET", "/me"),
        ("PUT", "/tickets/101"),
        ("GET", "/tags"),
        ("POST", "/tickets/101/tags"),
        ("POST", "/tags"),
        ("POST", "/tickets/101/tags"),
        ("POST", "/tickets/101/reply"),
    ]
    assert sent(responses.calls[1]) == {"ticket_attributes": {"Linked issue status": "ENG-1: Todo"}, "admin_id": 900}
    note = sent(responses.calls[-1])
    assert note["message_type"] == "note" and note["admin_id"] == "900"
    assert note["body"] == f"<p>Linked ENG-1 &lt;b&gt;</p><p>[{marker_token(KEY)}]</p>"
    assert result.updated_at == datetime.fromtimestamp(T0 + 1, timezone.utc)


@responses.activate
def test_reopening_sets_an_in_progress_state_only_from_the_statuses_given():
    responses.get(f"{API}/me", json={"type": "admin", "id": "900"})
    responses.get(f"{API}/tickets/101", json=ticket(category="resolved", open=False))
    responses.get(f"{API}/conversations/101", json=conversation())
    responses.get(f"{API}/contacts/ct1", json=contact())
    responses.get(
        f"{API}/ticket_states",
        json={"type": "list", "data": [{"id": "1", "category": "resolved"}, {"id": "2", "category": "in_progress"}]},
    )
    responses.put(f"{API}/tickets/101", json=ticket(updated=T0))
    make().update_ticket("101", TicketUpdate(status="open", status_from=("solved", "pending")), KEY)
    put = next(c for c in responses.calls if c.request.method == "PUT")
    assert sent(put) == {"open": True, "ticket_state_id": "2", "admin_id": 900}

    responses.calls.reset()  # type: ignore[no-untyped-call]
    current = make().get_ticket("101")
    responses.calls.reset()  # type: ignore[no-untyped-call]
    make().update_ticket("101", TicketUpdate(status="open", status_from=("pending",)), KEY, current)
    assert not [c for c in responses.calls if c.request.method == "PUT"]


@responses.activate
def test_removing_a_tag_that_is_not_there_is_done():
    responses.get(f"{API}/me", json={"type": "admin", "id": "900"})
    responses.get(f"{API}/tags", json={"type": "list", "data": [{"type": "tag", "id": "5", "name": "old"}]})
    responses.delete(
        f"{API}/tickets/101/tags/5",
        status=404,
        json={"type": "error.list", "errors": [{"code": "tag_not_found", "message": "Tag not found"}]},
    )
    connector = make()
    connector.update_ticket("101", TicketUpdate(remove_tags=("old",)), KEY)
    assert [c.request.method for c in responses.calls] == ["GET", "GET", "DELETE"]  # tags, me, the removal
    # A tag the workspace list does not name is looked up once more (it may be new), then skipped.
    connector.update_ticket("101", TicketUpdate(remove_tags=("never-made",)), KEY)
    assert [c.request.url.removeprefix(API) for c in responses.calls[3:]] == ["/tags"]


@responses.activate
def test_several_tags_to_remove_are_removed_only_where_the_ticket_carries_them():
    """Without the ticket as last read, one read of its tags spares a request per tag it does not carry."""
    responses.get(f"{API}/conversations/101", json=conversation(tags=("vip", "syncd_stage_waiting")))
    responses.get(f"{API}/me", json={"type": "admin", "id": "900"})
    responses.get(
        f"{API}/tags", json={"type": "list", "data": [{"type": "tag", "id": "5", "name": "syncd_stage_waiting"}]}
    )
    responses.delete(f"{API}/tickets/101/tags/5", json={"type": "tag", "id": "5", "name": "syncd_stage_waiting"})
    stages = tuple(f"syncd_stage_{s}" for s in ("new", "needs_context", "assigned", "waiting", "follow_up"))
    make().update_ticket("101", TicketUpdate(remove_tags=stages), KEY)
    assert [f"{c.request.method} {c.request.url.removeprefix(API)}" for c in responses.calls] == [
        "GET /conversations/101",
        "GET /tags",
        "GET /me",
        "DELETE /tickets/101/tags/5",
    ]


@responses.activate
def test_find_marker_reads_the_notes():
    part = {"id": "9", "part_type": "note", "body": f"<p>x</p><p>[{marker_token(KEY)}]</p>", "created_at": T0}
    responses.get(f"{API}/conversations/101", json=conversation(parts=[part]))
    assert make().find_marker("101", KEY)
    assert not make().find_marker("101", "f" * 20)


@responses.activate
def test_a_missing_ticket_is_not_found():
    responses.get(
        f"{API}/tickets/999",
        status=404,
        json={"type": "error.list", "errors": [{"code": "ticket_not_found", "message": "Ticket not found"}]},
    )
    with pytest.raises(NotFound):
        make().get_ticket("999")
    with pytest.raises(NotFound):
        make().get_ticket("not-an-id")


@responses.activate
def test_a_spent_budget_parks_the_connector_until_the_reset():
    responses.post(
        f"{API}/tickets/search",
        status=429,
        json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
        headers={"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(T0 + 600)},
    )
    connector = make(max_wait=5)
    with pytest.raises(RateLimited) as caught:
        list(connector.poll(None))
    assert caught.value.until == datetime.fromtimestamp(T0 + 600, timezone.utc)
    assert connector.http.rate.limit == 1666 and connector.http.rate.remaining == 0


@responses.activate
def test_a_ticket_the_conversation_search_also_answers_is_followed_as_the_ticket():
    responses.post(f"{API}/tickets/search", json=search_body(ticket("101")))
    responses.post(
        f"{API}/conversations/search",
        json={"type": "conversation.list", "conversations": [conversation("101")], "pages": {"type": "pages"}},
    )
    responses.get(f"{API}/conversations/101", json=conversation("101"))
    responses.get(f"{API}/contacts/ct1", json=contact())
    records = [r for p in make(conversations=True).poll(None) for r in p.records]
    assert [r.ref.id for r in records] == ["101"]


@responses.activate
def test_a_ticket_deleted_between_the_search_and_its_read_is_skipped():
    responses.post(f"{API}/tickets/search", json=search_body(ticket("101"), ticket("102")))
    responses.get(
        f"{API}/conversations/101", status=404, json={"type": "error.list", "errors": [{"code": "not_found"}]}
    )
    responses.get(f"{API}/conversations/102", json=conversation("102"))
    responses.get(f"{API}/contacts/ct1", json=contact())
    page = list(make().poll(None))[-1]
    assert [r.ref.id for r in page.records] == ["102"] and page.rejected == []
