"""The Zendesk fake, driven over real HTTP with plain requests."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
import requests

from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_OAUTH_TOKEN, SANDBOX_TOKEN, ZendeskFake
from syncd.sandbox.server import Sandbox
from tests.connectors.conftest import Clock


@pytest.fixture
def fake(clock):
    zd = ZendeskFake(clock=clock)
    org = zd.add_organization("Northwind", plan="enterprise")
    zd.customer = zd.add_user("Hannah", "hannah@northwind.example", organization_id=org["id"])
    zd.agent = zd.add_user("Priya", "priya@support.example", role="agent")
    zd.org = org
    with Sandbox([zd]):
        yield zd


@pytest.fixture
def api(fake):
    session = requests.Session()
    session.auth = (f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN)
    base = fake.base_url

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, base + path, timeout=5, **kwargs)

    yield call
    session.close()


def make_tickets(fake: ZendeskFake, clock: Clock, n: int) -> list[int]:
    ids = []
    for i in range(n):
        clock.advance(10)
        ids.append(fake.create_ticket(f"Subject {i}", f"Body {i}", requester_id=fake.customer["id"])["id"])
    return ids


# -- auth, headers, suffix ----------------------------------------------------------


def test_me_answers_for_the_sandbox_credentials_with_or_without_json_suffix(fake, api):
    for path in ("/api/v2/users/me", "/api/v2/users/me.json"):
        r = api("GET", path)
        assert r.status_code == 200
        assert r.json()["user"]["email"] == SANDBOX_EMAIL
        assert r.json()["user"]["role"] == "admin"
    assert fake.counts["GET /api/v2/users/me"] == 2


def test_wrong_credentials_get_zendesks_401_body(fake):
    url = fake.base_url + "/api/v2/users/me"
    r = requests.get(url, auth=(f"{SANDBOX_EMAIL}/token", "wrong"), timeout=5)
    assert r.status_code == 401
    assert r.json() == {"error": "Couldn't authenticate you"}
    assert requests.get(url, timeout=5).status_code == 401
    r = requests.get(url, headers={"Authorization": f"Bearer {SANDBOX_OAUTH_TOKEN}"}, timeout=5)
    assert r.status_code == 200


def test_every_response_carries_rate_limit_headers_and_a_budget_answers_429(fake, api, clock):
    r = api("GET", "/api/v2/users/me")
    assert r.headers["x-rate-limit"] == "700"
    remaining = int(r.headers["x-rate-limit-remaining"])
    assert int(api("GET", "/api/v2/tickets/999").headers["x-rate-limit-remaining"]) == remaining - 1
    fake.limit_per_minute = 3
    clock.advance(60)
    assert [api("GET", "/api/v2/users/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = api("GET", "/api/v2/users/me")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["x-rate-limit-remaining"] == "0"
    clock.advance(60)
    assert api("GET", "/api/v2/users/me").status_code == 200


def test_export_budget_applies_to_the_export_only(fake, api, clock):
    fake.export_limit_per_minute = 1
    assert api("GET", "/api/v2/incremental/tickets/cursor", params={"start_time": 0}).status_code == 200
    assert api("GET", "/api/v2/incremental/tickets/cursor", params={"start_time": 0}).status_code == 429
    assert api("GET", "/api/v2/users/me").status_code == 200


# -- incremental export ---------------------------------------------------------------


def export(api, **params) -> dict:
    r = api("GET", "/api/v2/incremental/tickets/cursor.json", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_export_pages_in_change_order_with_opaque_cursors(fake, api, clock):
    ids = make_tickets(fake, clock, 5)
    seen, pages = [], []
    body = export(api, start_time=0, per_page=2)
    while True:
        pages.append(body)
        seen += [t["id"] for t in body["tickets"]]
        assert body["after_cursor"]
        assert "cursor=" in body["after_url"]
        if body["end_of_stream"]:
            break
        body = export(api, cursor=body["after_cursor"], per_page=2)
    assert seen == ids
    assert [len(p["tickets"]) for p in pages] == [2, 2, 1]
    assert pages[0]["before_cursor"] is None
    assert all(isinstance(t["generated_timestamp"], int) for p in pages for t in p["tickets"])
    idle = export(api, cursor=pages[-1]["after_cursor"])
    assert idle["tickets"] == [] and idle["end_of_stream"] is True
    assert idle["after_cursor"] == pages[-1]["after_cursor"]


def test_a_ticket_updated_after_the_cursor_reappears(fake, api, clock):
    ids = make_tickets(fake, clock, 3)
    cursor = export(api, start_time=0)["after_cursor"]
    clock.advance(30)
    fake.add_comment(ids[0], "Any news?", author_id=fake.customer["id"])
    body = export(api, cursor=cursor)
    assert [t["id"] for t in body["tickets"]] == [ids[0]]
    assert body["tickets"][0]["updated_at"] == "2026-11-21T12:01:00Z"
    assert export(api, cursor=body["after_cursor"])["tickets"] == []


def test_export_start_time_skips_older_changes(fake, api, clock):
    ids = make_tickets(fake, clock, 4)
    cutoff = int(datetime(2026, 11, 21, 12, 0, 30, tzinfo=timezone.utc).timestamp())  # ids[2]'s time
    assert [t["id"] for t in export(api, start_time=cutoff)["tickets"]] == ids[2:]


def test_export_sideloads_users_and_organizations(fake, api, clock):
    make_tickets(fake, clock, 2)
    body = export(api, start_time=0, include="users,organizations")
    assert {u["id"] for u in body["users"]} >= {fake.customer["id"]}
    assert [o["organization_fields"]["plan"] for o in body["organizations"]] == ["enterprise"]
    assert "users" not in export(api, start_time=0)


def test_export_can_leave_out_the_last_minute_like_zendesk(clock):
    zd = ZendeskFake(clock=clock, exclude_recent=True)
    customer = zd.add_user("C", "c@example.com")
    with Sandbox([zd]):
        auth = (f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN)
        url = zd.base_url + "/api/v2/incremental/tickets/cursor"
        old = zd.create_ticket("old", "x", requester_id=customer["id"])["id"]
        clock.advance(120)
        new = zd.create_ticket("new", "y", requester_id=customer["id"])["id"]
        body = requests.get(url, params={"start_time": 0}, auth=auth, timeout=5).json()
        assert [t["id"] for t in body["tickets"]] == [old]
        assert body["end_of_stream"] is True
        clock.advance(61)
        body = requests.get(url, params={"cursor": body["after_cursor"]}, auth=auth, timeout=5).json()
        assert [t["id"] for t in body["tickets"]] == [new]


def test_export_is_for_admins_only_and_checks_its_parameters(fake, api):
    r = requests.get(
        fake.base_url + "/api/v2/incremental/tickets/cursor",
        params={"start_time": 0},
        auth=("priya@support.example/token", SANDBOX_TOKEN),
        timeout=5,
    )
    assert r.status_code == 403
    assert api("GET", "/api/v2/incremental/tickets/cursor").status_code == 400
    assert api("GET", "/api/v2/incremental/tickets/cursor", params={"cursor": "!!"}).status_code == 400


# -- tickets -------------------------------------------------------------------------


def test_create_ticket_answers_201_with_the_description_as_first_comment(fake, api):
    r = api(
        "POST",
        "/api/v2/tickets",
        json={
            "ticket": {
                "subject": "Broken",
                "comment": {"body": "It broke"},
                "requester_id": fake.customer["id"],
                "priority": "high",
            }
        },
    )
    assert r.status_code == 201
    ticket = r.json()["ticket"]
    assert ticket["status"] == "new" and ticket["description"] == "It broke"
    assert ticket["organization_id"] == fake.org["id"]
    assert ticket["url"].endswith(f"/api/v2/tickets/{ticket['id']}.json")
    assert fake.ticket_comments(ticket["id"])[0]["author_id"] == fake.api_user["id"]


def test_update_adds_the_comment_as_the_api_user_and_bumps_updated_at(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    before = fake.ticket(tid)["updated_at"]
    clock.advance(5)
    r = api(
        "PUT",
        f"/api/v2/tickets/{tid}.json",
        json={
            "ticket": {
                "comment": {"body": "Linked to ENG-1", "public": False},
                "status": "pending",
                "priority": "high",
                "assignee_id": fake.agent["id"],
                "metadata": {"syncd": "k1"},
            }
        },
    )
    assert r.status_code == 200
    ticket = r.json()["ticket"]
    assert ticket["updated_at"] == "2026-11-21T12:00:15Z" != before
    assert (ticket["status"], ticket["priority"], ticket["assignee_id"]) == ("pending", "high", fake.agent["id"])
    note = fake.ticket_comments(tid)[-1]
    assert note["public"] is False and note["author_id"] == fake.api_user["id"]
    assert note["metadata"]["custom"] == {"syncd": "k1"}
    assert "Linked to ENG-1" in note["html_body"]
    assert any(e["type"] == "Comment" for e in r.json()["audit"]["events"])


def test_tags_replace_while_additional_and_remove_tags_edit(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    put = lambda t: api("PUT", f"/api/v2/tickets/{tid}", json={"ticket": t}).json()["ticket"]["tags"]  # noqa: E731
    assert put({"tags": ["a", "b"]}) == ["a", "b"]
    assert put({"tags": ["c"]}) == ["c"]
    assert put({"additional_tags": ["d", "c"]}) == ["c", "d"]
    assert put({"remove_tags": ["c"]}) == ["d"]


def test_custom_fields_are_set_by_id_and_listed_in_ticket_fields(fake, api, clock):
    field = fake.add_ticket_field("Linked issue status")
    [tid] = make_tickets(fake, clock, 1)
    r = api(
        "PUT",
        f"/api/v2/tickets/{tid}",
        json={
            "ticket": {
                "custom_fields": [{"id": field["id"], "value": "In Progress"}, {"id": 12345, "value": "ignored"}]
            }
        },
    )
    assert {"id": field["id"], "value": "In Progress"} in r.json()["ticket"]["custom_fields"]
    assert fake.field_value(tid, field["id"]) == "In Progress"
    fields = api("GET", "/api/v2/ticket_fields").json()["ticket_fields"]
    assert any(f["id"] == field["id"] and f["title"] == "Linked issue status" for f in fields)
    assert {"subject", "status", "priority"} <= {f["type"] for f in fields}


def test_a_closed_ticket_refuses_updates_with_422(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    fake.set_status(tid, "closed")
    r = api("PUT", f"/api/v2/tickets/{tid}", json={"ticket": {"status": "open"}})
    assert r.status_code == 422
    assert r.json()["error"] == "RecordInvalid"
    assert "closed" in r.json()["details"]["status"][0]["description"]
    assert fake.ticket(tid)["status"] == "closed"


def test_safe_update_with_a_stale_stamp_is_a_409(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    stamp = fake.ticket(tid)["updated_at"]
    clock.advance(5)
    fake.add_comment(tid, "meanwhile", author_id=fake.customer["id"])
    stale = {"ticket": {"status": "solved", "safe_update": True, "updated_stamp": stamp}}
    assert api("PUT", f"/api/v2/tickets/{tid}", json=stale).status_code == 409
    fresh = {"ticket": {"status": "solved", "safe_update": True, "updated_stamp": fake.ticket(tid)["updated_at"]}}
    assert api("PUT", f"/api/v2/tickets/{tid}", json=fresh).status_code == 200


def test_invalid_values_missing_tickets_and_bad_json_are_refused(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    assert api("PUT", f"/api/v2/tickets/{tid}", json={"ticket": {"status": "done"}}).status_code == 422
    assert (
        api("PUT", f"/api/v2/tickets/{tid}", json={"ticket": {"assignee_id": fake.customer["id"]}}).status_code == 422
    )
    missing = api("GET", "/api/v2/tickets/424242")
    assert missing.status_code == 404 and missing.json() == {"error": "RecordNotFound", "description": "Not found"}
    bad = api("PUT", f"/api/v2/tickets/{tid}", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400


def test_show_ticket_and_show_many_sideload(fake, api, clock):
    ids = make_tickets(fake, clock, 2)
    one = api("GET", f"/api/v2/tickets/{ids[0]}", params={"include": "users,organizations"}).json()
    assert one["ticket"]["id"] == ids[0] and one["organizations"][0]["id"] == fake.org["id"]
    many = api("GET", "/api/v2/tickets/show_many", params={"ids": f"{ids[0]},{ids[1]},999"}).json()
    assert [t["id"] for t in many["tickets"]] == ids


# -- bulk updates -------------------------------------------------------------------


def test_update_many_returns_a_job_that_reports_per_ticket_results(fake, api, clock):
    ids = make_tickets(fake, clock, 3)
    fake.set_status(ids[2], "closed")
    r = api(
        "PUT",
        "/api/v2/tickets/update_many.json",
        params={"ids": f"{ids[0]},{ids[1]},{ids[2]},999"},
        json={"ticket": {"comment": {"body": "Fixed in 4.13", "public": False}, "additional_tags": ["shipped"]}},
    )
    assert r.status_code == 200
    job = r.json()["job_status"]
    assert job["status"] == "queued" and job["total"] == 4
    first = api("GET", f"/api/v2/job_statuses/{job['id']}").json()["job_status"]
    assert first["status"] == "working"
    done = api("GET", f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
    assert done["status"] == "completed" and done["progress"] == 4
    by_id = {item["id"]: item for item in done["results"]}
    assert by_id[ids[0]]["success"] is True and by_id[ids[1]]["status"] == "Updated"
    assert by_id[ids[2]]["success"] is False and "closed" in by_id[ids[2]]["details"]
    assert by_id[999]["error"] == "RecordNotFound"
    assert "shipped" in fake.ticket(ids[0])["tags"] and "shipped" not in fake.ticket(ids[2])["tags"]
    assert fake.ticket_comments(ids[1])[-1]["body"] == "Fixed in 4.13"
    assert api("GET", "/api/v2/job_statuses/nope").status_code == 404


def test_update_many_takes_at_most_100_tickets(fake, api):
    ids = ",".join(str(i) for i in range(1, 102))
    assert api("PUT", "/api/v2/tickets/update_many", params={"ids": ids}, json={"ticket": {}}).status_code == 400


# -- comments and tags ----------------------------------------------------------------


def test_comments_page_with_cursors_and_links(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    for i in range(4):
        fake.add_comment(tid, f"reply {i}", author_id=fake.agent["id"])
    bodies, url, pages = [], f"/api/v2/tickets/{tid}/comments?page[size]=2", 0
    r = api("GET", url)
    while True:
        pages += 1
        body = r.json()
        bodies += [c["body"] for c in body["comments"]]
        if not body["meta"]["has_more"]:
            assert body["links"]["next"] is None
            break
        r = requests.get(body["links"]["next"], auth=(f"{SANDBOX_EMAIL}/token", SANDBOX_TOKEN), timeout=5)
    assert bodies == ["Body 0", "reply 0", "reply 1", "reply 2", "reply 3"] and pages == 3
    newest = api("GET", f"/api/v2/tickets/{tid}/comments", params={"page[size]": 2, "sort": "-created_at"}).json()
    assert [c["body"] for c in newest["comments"]] == ["reply 3", "reply 2"]
    after = api(
        "GET",
        f"/api/v2/tickets/{tid}/comments",
        params={"page[size]": 2, "sort": "-created_at", "page[after]": newest["meta"]["after_cursor"]},
    ).json()
    assert [c["body"] for c in after["comments"]] == ["reply 1", "reply 0"]
    offset = api("GET", f"/api/v2/tickets/{tid}/comments").json()
    assert offset["count"] == 5 and offset["next_page"] is None


def test_tag_endpoints_add_set_and_remove(fake, api, clock):
    [tid] = make_tickets(fake, clock, 1)
    path = f"/api/v2/tickets/{tid}/tags"
    assert api("PUT", path, json={"tags": ["a"]}).json() == {"tags": ["a"]}
    assert api("PUT", path, json={"tags": ["b"]}).json() == {"tags": ["a", "b"]}
    assert api("POST", path, json={"tags": ["x", "y"]}).status_code == 201
    assert api("DELETE", path, json={"tags": ["x"]}).status_code == 204
    assert api("GET", path).json() == {"tags": ["y"]}
    stale = {"tags": ["z"], "safe_update": True, "updated_stamp": "2020-01-01T00:00:00Z"}
    assert api("PUT", path, json=stale).status_code == 409


# -- people in the UI -------------------------------------------------------------------


def test_a_customer_reply_reopens_a_solved_ticket(fake, clock):
    [tid] = make_tickets(fake, clock, 1)
    fake.set_status(tid, "solved", author_id=fake.agent["id"])
    fake.add_comment(tid, "Still broken", author_id=fake.customer["id"])
    assert fake.ticket(tid)["status"] == "open"
    fake.add_comment(tid, "internal", public=False, author_id=fake.agent["id"])
    assert fake.ticket_comments(tid)[-1]["public"] is False


def test_basic_auth_header_built_by_hand_matches_zendesks_scheme(fake):
    token = base64.b64encode(f"{SANDBOX_EMAIL}/token:{SANDBOX_TOKEN}".encode()).decode()
    r = requests.get(fake.base_url + "/api/v2/users/me", headers={"Authorization": f"Basic {token}"}, timeout=5)
    assert r.status_code == 200


# -- ticket events, a change per ticket, jobs polled together ---------------------------


def test_ticket_events_list_every_update_with_its_comments_when_sideloaded(fake, api, clock):
    ids = make_tickets(fake, clock, 2)
    clock.advance(5)
    fake.add_comment(ids[0], "Still broken", public=True)
    fake.set_status(ids[1], "pending")
    body = api("GET", "/api/v2/incremental/ticket_events.json", params={"start_time": 0, "include": "comment_events"})
    assert body.status_code == 200
    events = body.json()["ticket_events"]
    assert [e["ticket_id"] for e in events] == [ids[0], ids[1], ids[0], ids[1]]  # in time order
    assert all(e["event_type"] == "Audit" for e in events)
    comments = [c for e in events for c in e["child_events"] if c["event_type"] == "Comment"]
    assert [c["body"] for c in comments] == ["Body 0", "Body 1", "Still broken"]
    change = next(c for c in events[3]["child_events"] if c["event_type"] == "Change")
    assert (change["status"], change["previous_value"]) == ("pending", "new")
    assert body.json()["end_of_stream"] is True and body.json()["end_time"] == events[-1]["timestamp"]

    bare = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": 0}).json()["ticket_events"]
    flags = [c for e in bare for c in e["child_events"] if "comment_present" in c]
    assert len(flags) == 3 and not any("body" in c for c in flags)  # without the sideload: flags only

    later = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": events[2]["timestamp"]})
    assert [e["id"] for e in later.json()["ticket_events"]] == [events[2]["id"], events[3]["id"]]

    clock.advance(5)
    made = fake.create_ticket("Urgent", "Down", requester_id=fake.customer["id"], priority="high")
    newest = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": 0}).json()["ticket_events"][-1]
    assert newest["ticket_id"] == made["id"]
    assert {"priority": "high", "event_type": "Create"}.items() <= newest["child_events"][1].items()


def test_ticket_events_page_by_time_and_are_for_admins(fake, api, clock):
    make_tickets(fake, clock, 5)
    fake.events_page_size = 2
    first = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": 0}).json()
    assert first["count"] == 2 and first["end_of_stream"] is False
    assert f"start_time={first['end_time']}" in first["next_page"]
    again = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": first["end_time"]}).json()
    assert again["ticket_events"][0]["id"] == first["ticket_events"][-1]["id"]  # the last second repeats
    agent = requests.get(
        fake.base_url + "/api/v2/incremental/ticket_events",
        params={"start_time": 0},
        auth=("priya@support.example/token", SANDBOX_TOKEN),
        timeout=5,
    )
    assert agent.status_code == 403
    assert api("GET", "/api/v2/incremental/ticket_events").status_code == 400


def test_update_many_with_a_change_per_ticket_and_jobs_shown_together(fake, api, clock):
    ids = make_tickets(fake, clock, 2)
    jobs = []
    for tid, text in zip(ids, ("first note", "second note")):
        r = api(
            "PUT",
            "/api/v2/tickets/update_many",
            json={"tickets": [{"id": tid, "comment": {"body": text, "public": False}, "additional_tags": ["x"]}]},
        )
        jobs.append(r.json()["job_status"]["id"])
    both = ",".join(jobs)
    working = api("GET", "/api/v2/job_statuses/show_many", params={"ids": both + ",unknown"}).json()
    assert [j["status"] for j in working["job_statuses"]] == ["working", "working"]  # the unknown one left out
    done = api("GET", "/api/v2/job_statuses/show_many.json", params={"ids": both}).json()["job_statuses"]
    assert [j["status"] for j in done] == ["completed", "completed"]
    assert [j["results"][0] for j in done] == [
        {"id": ids[0], "action": "update", "status": "Updated", "success": True},
        {"id": ids[1], "action": "update", "status": "Updated", "success": True},
    ]
    assert [fake.ticket_comments(t)[-1]["body"] for t in ids] == ["first note", "second note"]
    assert api("GET", "/api/v2/job_statuses/show_many").status_code == 400


def test_each_change_in_the_events_keeps_its_own_values_after_later_changes(fake, api, clock):
    """The fake's events share a ticket's values instead of copying them (a ticket's values are replaced,
    never changed in place): a later change, over HTTP or in the UI, leaves what the export said before."""
    version, team = fake.add_ticket_field("Version")["id"], fake.add_ticket_field("Team")["id"]
    ticket_id = make_tickets(fake, clock, 1)[0]

    def bulk(changes: dict) -> None:
        r = api("PUT", "/api/v2/tickets/update_many", json={"tickets": [{"id": ticket_id, **changes}]})
        assert r.status_code == 200

    clock.advance(5)
    bulk({"custom_fields": [{"id": version, "value": "1.0"}], "additional_tags": ["a"]})
    clock.advance(5)
    bulk({"custom_fields": [{"id": version, "value": "2.0"}], "additional_tags": ["b"], "remove_tags": ["a"]})
    clock.advance(5)
    fake.update_ticket(ticket_id, custom_fields={team: "core"}, tags=["c"])
    events = api("GET", "/api/v2/incremental/ticket_events", params={"start_time": 0}).json()["ticket_events"]
    changes = [
        {k: v for k, v in c.items() if k in ("tags", "custom_fields", "previous_value")}
        for e in events[1:]
        for c in e["child_events"]
        if c["event_type"] == "Change"
    ]
    first = [{"id": version, "value": "1.0"}, {"id": team, "value": None}]
    second = [{"id": version, "value": "2.0"}, {"id": team, "value": None}]
    third = [{"id": version, "value": "2.0"}, {"id": team, "value": "core"}]
    assert changes == [
        {"tags": ["a"], "previous_value": []},
        {"custom_fields": first, "previous_value": [{"id": version, "value": None}, {"id": team, "value": None}]},
        {"tags": ["b"], "previous_value": ["a"]},
        {"custom_fields": second, "previous_value": first},
        {"tags": ["c"], "previous_value": ["b"]},
        {"custom_fields": third, "previous_value": second},
    ]
    assert fake.ticket(ticket_id)["custom_fields"] == third and fake.ticket(ticket_id)["tags"] == ["c"]
