"""A fake of the Zendesk Support API for the demo, end-to-end tests and benchmarks.

It speaks the wire format of Zendesk's official OpenAPI description and
documentation: the cursor-based incremental ticket export (tickets ordered by
change, opaque ``after_cursor``, ``end_of_stream``, sideloads), ticket show,
create and update (comments, tags, custom fields, ``safe_update``), follow-up
tickets of closed tickets (``via_followup_source_id``), listing by
``external_id``, bulk
``update_many`` (one change for many ids, or a change per ticket) with job
statuses shown one or many at a time, the time-based incremental ticket
events export (``comment_events`` sideload), comment listing with cursor pagination,
tags, ticket fields, Zendesk's error bodies and rate-limit headers. Paths are
served with or without the ``.json`` suffix.

Every timestamp comes from ``self.clock`` at second precision, like Zendesk.
The helper methods (``create_ticket``, ``add_comment``, ``set_status``, ...)
act like people in Zendesk's UI; they never go through HTTP and are not
counted.
"""

from __future__ import annotations

import base64
import bisect
import copy
import html
import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

from syncd.sandbox.server import FakeRequest, FakeResponse, FakeService, HttpFault

SANDBOX_SUBDOMAIN = "sandbox"
SANDBOX_EMAIL = "syncd-bot@sandbox.example"
SANDBOX_TOKEN = "zd-sandbox-token-0000000000000000"  # only the sandbox accepts it
SANDBOX_OAUTH_TOKEN = "zd-sandbox-oauth-0000000000000000"

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
ROLES = ("end-user", "agent", "admin")
DEFAULT_LIMIT_PER_MINUTE = 700  # what the headers report when no budget is set
EXPORT_PAGE_MAX = 1000
EVENTS_PAGE_MAX = 1000  # the time-based exports' page
COMMENTS_PAGE_MAX = 100
LIST_PAGE_MAX = 100
RECENT_WINDOW = timedelta(seconds=60)

NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
UNAUTHORIZED = {"error": "Couldn't authenticate you"}


def iso(dt: datetime) -> str:
    """Zendesk's timestamp form: UTC, second precision."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _stored_time(text: str) -> datetime:
    """A time the fake wrote itself, so always well formed."""
    dt = parse_iso(text)
    assert dt is not None, text
    return dt


def record_invalid(field: str, message: str) -> HttpFault:
    return HttpFault(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [{"description": message, "error": "InvalidValue"}]},
        },
    )


def bad_request(message: str) -> HttpFault:
    return HttpFault(400, {"error": "InvalidValue", "description": message})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text.encode(), validate=True).decode()


class ZendeskFake(FakeService):
    """In-memory Zendesk account served over HTTP."""

    name = "zendesk"
    default_port = 8801
    world = "connectors.zendesk.seed:ZendeskWorld"
    secrets = {"token": SANDBOX_TOKEN}

    def connector_config(self) -> list[str]:
        return [f'email = "{SANDBOX_EMAIL}"']

    def describe(self, url: str) -> str:
        return f"{url}  (Basic auth '{SANDBOX_EMAIL}/token' : '{SANDBOX_TOKEN}')"

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        exclude_recent: bool = False,
        limit_per_minute: int | None = None,
        export_limit_per_minute: int | None = None,
        job_polls: int = 1,
        email: str = SANDBOX_EMAIL,
        token: str = SANDBOX_TOKEN,
    ):
        super().__init__(seed=seed)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self.exclude_recent = exclude_recent  # the real export leaves out the last minute's changes
        self.limit_per_minute = limit_per_minute  # None: report headers, never refuse
        self.export_limit_per_minute = export_limit_per_minute
        self.job_polls = job_polls  # polls answered "working" before a job reports "completed"
        self._ids = {
            "user": 6130900000000,
            "organization": 6130800000000,
            "group": 6130700000000,
            "ticket": 0,
            "comment": 28800000000000,
            "audit": 28900000000000,
            "field": 36000000000,
            "event": 29000000000000,
        }
        self.users: dict[int, dict] = {}
        self.organizations: dict[int, dict] = {}
        self.groups: dict[int, dict] = {}
        self.tickets: dict[int, dict] = {}
        self.comments: dict[int, list[dict]] = {}
        self.ticket_fields: dict[int, dict] = {}
        self.jobs: dict[str, dict] = {}
        # Every ticket update, in order, for the ticket events export: (unix second, event).
        self.ticket_events: list[tuple[int, dict]] = []
        self.events_page_size = EVENTS_PAGE_MAX
        self._seq: dict[int, int] = {}  # ticket id -> position of its latest change in the export
        self._next_seq = 0
        self.api_tokens: set[str] = {token}
        self.oauth_tokens: dict[str, int] = {}
        self._minute: int | None = None
        self._used: dict[str, int] = {}
        self._actor: int | None = None
        for title, kind in (
            ("Subject", "subject"),
            ("Description", "description"),
            ("Status", "status"),
            ("Type", "tickettype"),
            ("Priority", "priority"),
            ("Group", "group"),
            ("Assignee", "assignee"),
        ):
            self._add_field(title, kind, system=True)
        self.api_user = self.add_user("syncd (API)", email, role="admin")
        self.oauth_tokens[SANDBOX_OAUTH_TOKEN] = self.api_user["id"]
        self._routes()

    def _routes(self) -> None:
        r = self.route
        r("GET", "/api/v2/users/me", self._h_me)
        r("GET", "/api/v2/users/{id}", self._h_user)
        r("GET", "/api/v2/organizations/{id}", self._h_organization)
        r("GET", "/api/v2/incremental/tickets/cursor", self._h_export)
        r("GET", "/api/v2/incremental/ticket_events", self._h_ticket_events)
        r("GET", "/api/v2/job_statuses/show_many", self._h_jobs)
        r("GET", "/api/v2/tickets/show_many", self._h_show_many)
        r("PUT", "/api/v2/tickets/update_many", self._h_update_many)
        r("GET", "/api/v2/tickets/{id}", self._h_show)
        r("GET", "/api/v2/tickets", self._h_list)
        r("POST", "/api/v2/tickets", self._h_create)
        r("PUT", "/api/v2/tickets/{id}", self._h_update)
        r("GET", "/api/v2/tickets/{id}/comments", self._h_comments)
        r("GET", "/api/v2/tickets/{id}/tags", self._h_tags_get)
        r("POST", "/api/v2/tickets/{id}/tags", self._h_tags_set)
        r("PUT", "/api/v2/tickets/{id}/tags", self._h_tags_add)
        r("DELETE", "/api/v2/tickets/{id}/tags", self._h_tags_remove)
        r("GET", "/api/v2/job_statuses/{id}", self._h_job)
        r("GET", "/api/v2/ticket_fields", self._h_fields)

    # -- ids, time, urls ----------------------------------------------------------

    def _id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _now(self) -> str:
        return iso(self.clock())

    def _url(self, path: str) -> str:
        base = self.base_url or f"https://{SANDBOX_SUBDOMAIN}.zendesk.com"
        return f"{base}{path}"

    def agent_url(self, ticket_id: int) -> str:
        """Where an agent opens the ticket (``/agent/tickets/{id}``)."""
        return self._url(f"/agent/tickets/{ticket_id}")

    # -- people acting in the UI (not HTTP) -----------------------------------------

    def add_organization(
        self,
        name: str,
        *,
        plan: str | None = None,
        domain_names: Sequence[str] = (),
        tags: Sequence[str] = (),
        notes: str = "",
    ) -> dict:
        with self.lock:
            now = self._now()
            org_id = self._id("organization")
            org = {
                "id": org_id,
                "url": "",
                "name": name,
                "domain_names": list(domain_names),
                "details": "",
                "notes": notes,
                "group_id": None,
                "shared_tickets": False,
                "shared_comments": False,
                "external_id": None,
                "tags": list(tags),
                "organization_fields": {"plan": plan},
                "created_at": now,
                "updated_at": now,
            }
            self.organizations[org_id] = org
            return org

    def add_user(self, name: str, email: str, *, role: str = "end-user", organization_id: int | None = None) -> dict:
        if role not in ROLES:
            raise ValueError(f"user {email}: role must be one of {', '.join(ROLES)}")
        with self.lock:
            now = self._now()
            user_id = self._id("user")
            user = {
                "id": user_id,
                "url": "",
                "name": name,
                "email": email,
                "role": role,
                "organization_id": organization_id,
                "active": True,
                "verified": True,
                "suspended": False,
                "time_zone": "UTC",
                "locale": "en-US",
                "tags": [],
                "user_fields": {},
                "created_at": now,
                "updated_at": now,
            }
            self.users[user_id] = user
            return user

    def add_group(self, name: str) -> dict:
        with self.lock:
            now = self._now()
            group: dict[str, Any] = {"id": self._id("group"), "name": name, "created_at": now, "updated_at": now}
            self.groups[group["id"]] = group
            return group

    def add_api_token(self, token: str) -> None:
        with self.lock:
            self.api_tokens.add(token)

    def add_oauth_token(self, token: str, user_id: int) -> None:
        with self.lock:
            self.oauth_tokens[token] = user_id

    def add_ticket_field(
        self, title: str, kind: str = "text", *, options: Sequence[tuple[str, str]] = (), description: str = ""
    ) -> dict:
        """A custom ticket field (``kind``: text, textarea, tagger, integer, checkbox, date...)."""
        with self.lock:
            return self._add_field(title, kind, system=False, options=options, description=description)

    def _add_field(
        self, title: str, kind: str, *, system: bool, options: Sequence[tuple[str, str]] = (), description: str = ""
    ) -> dict:
        now = self._now()
        field_id = self._id("field")
        field = {
            "id": field_id,
            "url": "",
            "type": kind,
            "title": title,
            "raw_title": title,
            "description": description,
            "raw_description": description,
            "position": len(self.ticket_fields),
            "active": True,
            "required": False,
            "collapsed_for_agents": False,
            "regexp_for_validation": None,
            "title_in_portal": title,
            "raw_title_in_portal": title,
            "visible_in_portal": False,
            "editable_in_portal": False,
            "required_in_portal": False,
            "tag": None,
            "removable": not system,
            "created_at": now,
            "updated_at": now,
        }
        if options:
            field["custom_field_options"] = [
                {"id": self._id("field"), "name": name, "raw_name": name, "value": value, "default": False}
                for name, value in options
            ]
        self.ticket_fields[field_id] = field
        return field

    def create_ticket(
        self,
        subject: str,
        description: str,
        *,
        requester_id: int,
        status: str = "new",
        priority: str | None = None,
        tags: Sequence[str] = (),
        custom_fields: dict[int, Any] | None = None,
        assignee_id: int | None = None,
        group_id: int | None = None,
        organization_id: int | None = None,
        type: str | None = None,
        via: str = "web",
    ) -> dict:
        """A customer (or agent on their behalf) opens a ticket; returns the stored ticket."""
        data = {
            "subject": subject,
            "comment": {"body": description, "public": True, "author_id": requester_id},
            "requester_id": requester_id,
            "status": status,
            "priority": priority,
            "tags": list(tags),
            "custom_fields": [{"id": k, "value": v} for k, v in (custom_fields or {}).items()],
            "assignee_id": assignee_id,
            "group_id": group_id,
            "organization_id": organization_id,
            "type": type,
        }
        with self.lock:
            ticket, _ = self._create(data, actor_id=requester_id, via=via)
            return ticket

    def add_comment(
        self,
        ticket_id: int,
        body: str,
        *,
        public: bool = True,
        author_id: int | None = None,
        html_body: str | None = None,
    ) -> dict:
        """Someone replies in the UI. A customer's reply reopens a pending/solved ticket."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            author = author_id or ticket["requester_id"]
            changes: dict[str, Any] = {"comment": {"body": body, "public": public, "author_id": author}}
            if html_body is not None:
                changes["comment"]["html_body"] = html_body
            role = self.users.get(author, {}).get("role")
            if role == "end-user" and ticket["status"] in ("new", "pending", "hold", "solved"):
                changes["status"] = "open"
            self._update(ticket, changes, actor_id=author, via="web")
            return copy.deepcopy(self.comments[ticket["id"]][-1])

    def set_status(self, ticket_id: int, status: str, *, author_id: int | None = None) -> dict:
        return self.update_ticket(ticket_id, author_id=author_id, status=status)

    def close_ticket(self, ticket_id: int) -> dict:
        """Zendesk's automation closes a solved ticket (days later; here at once).
        From then on the ticket refuses every update."""
        with self.lock:
            ticket = self._ticket(ticket_id)
            if ticket["status"] != "closed":
                self._update(ticket, {"status": "closed"}, actor_id=-1, via="rule")
            return copy.deepcopy(ticket)

    def update_ticket(self, ticket_id: int, *, author_id: int | None = None, **changes: Any) -> dict:
        """An agent edits the ticket in the UI (status, priority, tags, assignee_id, custom_fields...)."""
        if isinstance(changes.get("custom_fields"), dict):
            changes["custom_fields"] = [{"id": k, "value": v} for k, v in changes["custom_fields"].items()]
        with self.lock:
            ticket = self._ticket(ticket_id)
            agents = [u["id"] for u in self.users.values() if u["role"] != "end-user" and u is not self.api_user]
            actor = author_id or ticket["assignee_id"] or (agents[0] if agents else self.api_user["id"])
            self._update(ticket, changes, actor_id=actor, via="web")
            return copy.deepcopy(ticket)

    def ticket(self, ticket_id: int) -> dict:
        """The stored ticket as the API shows it (a copy)."""
        with self.lock:
            return self._ticket_json(self._ticket(ticket_id))

    def ticket_comments(self, ticket_id: int) -> list[dict]:
        with self.lock:
            self._ticket(ticket_id)
            return copy.deepcopy(self.comments[ticket_id])

    def field_value(self, ticket_id: int, field_id: int) -> Any:
        with self.lock:
            for item in self._ticket(ticket_id)["custom_fields"]:
                if item["id"] == field_id:
                    return item["value"]
            return None

    # -- internals: lookups and serialisation ----------------------------------------

    def _ticket(self, ticket_id: Any) -> dict:
        try:
            ticket = self.tickets.get(int(ticket_id))
        except (TypeError, ValueError):
            ticket = None
        if ticket is None:
            raise HttpFault(404, NOT_FOUND)
        return ticket

    # -- the connector exam (connectors/testing.py) --------------------------------------

    def exam_config(self) -> dict[str, Any]:
        return {"email": self.api_user["email"], "token": next(iter(sorted(self.api_tokens))), "backfill_days": 1}

    def exam_bad_credentials(self) -> dict[str, Any]:
        return {"token": "not-a-sandbox-token"}

    def exam_create(self, title: str) -> str:
        customer = next((u for u in self.users.values() if u["email"] == "exam@example.com"), None)
        if customer is None:
            customer = self.add_user("Exam Customer", "exam@example.com")
        return str(self.create_ticket(title, f"{title}: it does not work", requester_id=customer["id"])["id"])

    def exam_missing(self) -> str:
        return "999999999"

    def _ticket_json(self, ticket: dict) -> dict:
        out = copy.deepcopy(ticket)
        out["url"] = self._url(f"/api/v2/tickets/{ticket['id']}.json")
        out["fields"] = copy.deepcopy(out["custom_fields"])
        return out

    def _user_json(self, user: dict) -> dict:
        return {**copy.deepcopy(user), "url": self._url(f"/api/v2/users/{user['id']}.json")}

    def _org_json(self, org: dict) -> dict:
        return {**copy.deepcopy(org), "url": self._url(f"/api/v2/organizations/{org['id']}.json")}

    def _sideloads(self, request: FakeRequest, tickets: list[dict]) -> dict[str, list]:
        include = {x.strip() for x in (request.arg("include") or "").split(",") if x.strip()}
        out: dict[str, list] = {}
        if "users" in include:
            ids = sorted({i for t in tickets for i in (t["requester_id"], t["submitter_id"], t["assignee_id"]) if i})
            out["users"] = [self._user_json(self.users[i]) for i in ids if i in self.users]
        if "organizations" in include:
            ids = sorted({t["organization_id"] for t in tickets if t["organization_id"]})
            out["organizations"] = [self._org_json(self.organizations[i]) for i in ids if i in self.organizations]
        if "groups" in include:
            ids = sorted({t["group_id"] for t in tickets if t["group_id"]})
            out["groups"] = [copy.deepcopy(self.groups[i]) for i in ids if i in self.groups]
        return out

    # -- internals: writes ------------------------------------------------------------

    def _bump(self, ticket: dict) -> None:
        ticket["updated_at"] = self._now()
        self._next_seq += 1
        self._seq[ticket["id"]] = self._next_seq

    def _validate_user(self, user_id: Any, field: str, *, agent: bool) -> None:
        if user_id is None:
            return
        user = self.users.get(user_id) if isinstance(user_id, int) else None
        if user is None:
            raise record_invalid(field, f"{field} {user_id} is not a known user")
        if agent and user["role"] == "end-user":
            raise record_invalid(field, f"{field} {user_id} is not an agent")

    def _create(self, data: dict, *, actor_id: int, via: str) -> tuple[dict, dict]:
        if not isinstance(data, dict):
            raise bad_request("ticket must be an object")
        comment = data.get("comment") or {}
        if not (comment.get("body") or comment.get("html_body")):
            raise record_invalid("description", "Description: cannot be blank")
        requester_id = data.get("requester_id") or actor_id
        self._validate_user(requester_id, "requester_id", agent=False)
        external_id = data.get("external_id")
        if external_id is not None and (
            not isinstance(external_id, str) or len(external_id) > 255 or not external_id.isascii()
        ):
            raise record_invalid("external_id", "External id: must be ASCII text of at most 255 characters")
        org_id = data.get("organization_id") or self.users[requester_id]["organization_id"]
        now = self._now()
        ticket_id = self._id("ticket")
        ticket = {
            "id": ticket_id,
            "url": "",
            "external_id": external_id,
            "via": {"channel": via, "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": now,
            "updated_at": now,
            "type": None,
            "subject": data.get("subject") or "",
            "raw_subject": data.get("subject") or "",
            "description": "",
            "priority": None,
            "status": "new",
            "recipient": None,
            "requester_id": requester_id,
            "submitter_id": actor_id,
            "assignee_id": None,
            "organization_id": org_id,
            "group_id": None,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": bool(comment.get("public", True)),
            "due_at": None,
            "tags": [],
            "custom_fields": [{"id": f["id"], "value": None} for f in self.ticket_fields.values() if f["removable"]],
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "followup_ids": [],
            "ticket_form_id": None,
            "brand_id": None,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }
        changes = {
            k: v
            for k, v in data.items()
            if k
            in ("status", "priority", "tags", "custom_fields", "assignee_id", "group_id", "type", "comment", "metadata")
            and v is not None
        }
        source = self._follow_up_source(data.get("via_followup_source_id"))
        if source is not None:
            ticket["via"]["source"] = {
                "from": {"ticket_id": source["id"], "subject": source["subject"]},
                "to": {},
                "rel": "follow_up",
            }
            changes.setdefault("tags", list(source["tags"]))  # inherited unless the request gives tags
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        changes.setdefault("status", "open" if data.get("assignee_id") else "new")
        try:
            audit = self._update(ticket, changes, actor_id=actor_id, via=via, creating=True)
        except HttpFault:
            del self.tickets[ticket_id]
            del self.comments[ticket_id]
            raise
        if source is not None:
            source["followup_ids"].append(ticket_id)
        ticket["description"] = self.comments[ticket_id][0]["plain_body"]
        return ticket, audit

    def _follow_up_source(self, value: Any) -> dict | None:
        """The ticket a new one follows up. Zendesk honours ``via_followup_source_id``
        for a closed ticket only; for any other (or none) it has no effect."""
        if value is None:
            return None
        number = _int(value)
        if isinstance(value, bool) or number is None:
            raise record_invalid("via_followup_source_id", f"via_followup_source_id {value!r} is not a ticket id")
        source = self.tickets.get(number)
        return source if source is not None and source["status"] == "closed" else None

    def _update(self, ticket: dict, changes: dict, *, actor_id: int, via: str, creating: bool = False) -> dict:
        """Apply a ticket update the way Zendesk does; returns the audit. Raises HttpFault on refusal."""
        if not isinstance(changes, dict):
            raise bad_request("ticket must be an object")
        if ticket["status"] == "closed" and not creating:
            # Zendesk's own words and code for any write to a closed ticket.
            raise HttpFault(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {
                        "status": [{"description": "Status: closed prevents ticket update", "error": "ClosedTicket"}]
                    },
                },
            )
        stamp = changes.get("updated_stamp")
        if changes.get("safe_update") in (True, "true") and stamp is not None:
            if parse_iso(stamp) != parse_iso(ticket["updated_at"]):
                raise HttpFault(
                    409,
                    {
                        "error": "UpdateConflict",
                        "description": "Safe Update prevented the update due to outdated "
                        "ticket data. Please fetch the latest ticket data "
                        "and try again.",
                    },
                )
        status = changes.get("status")
        if status is not None and status not in STATUSES:
            raise record_invalid("status", f"Status: {status} is not valid")
        if "priority" in changes and changes["priority"] not in (None, *PRIORITIES):
            raise record_invalid("priority", f"Priority: {changes['priority']} is not valid")
        if "assignee_id" in changes:
            self._validate_user(changes["assignee_id"], "assignee_id", agent=True)
        if changes.get("group_id") is not None and changes["group_id"] not in self.groups:
            raise record_invalid("group_id", f"Group: {changes['group_id']} is not a known group")
        for key in ("tags", "additional_tags", "remove_tags"):
            if key in changes and not isinstance(changes[key], list):
                raise bad_request(f"{key} must be a list of strings")
        if "custom_fields" in changes and not isinstance(changes["custom_fields"], list):
            raise bad_request("custom_fields must be a list of {id, value} objects")

        events: list[dict] = []

        # A ticket's values are replaced, never changed in place (a new tags list, a new custom
        # fields list with a new dict for each field that changes), so the events share them
        # with the ticket instead of copying them: the answers copy what they hand out.
        def change(field: str, value: Any) -> None:
            if ticket.get(field) != value:
                events.append(
                    {
                        "id": self._id("event"),
                        "type": "Change",
                        "field_name": field,
                        "value": value,
                        "previous_value": ticket.get(field),
                    }
                )
                ticket[field] = value

        audit_id = self._id("audit")
        comment = changes.get("comment")
        if isinstance(comment, dict) and (comment.get("body") or comment.get("html_body")):
            author = comment.get("author_id") or actor_id
            self._validate_user(author, "author_id", agent=False)
            saved = self._add_comment(ticket, comment, author, audit_id, via, changes.get("metadata"))
            events.append({**saved, "type": "Comment"})  # comments are never changed in place either
        elif comment is not None and not isinstance(comment, dict):
            raise bad_request("comment must be an object")
        for key in ("subject", "type", "group_id"):
            if key in changes:
                change(key, changes[key])
        if "priority" in changes:
            change("priority", changes["priority"])
        if "assignee_id" in changes:
            change("assignee_id", changes["assignee_id"])
            if ticket["status"] == "new" and changes["assignee_id"] and status is None:
                status = "open"
        if status is not None:
            change("status", status)
        tags = list(ticket["tags"])
        if "tags" in changes:
            tags = _unique(changes["tags"])
        tags = _unique(tags + list(changes.get("additional_tags") or []))
        tags = [t for t in tags if t not in set(changes.get("remove_tags") or [])]
        change("tags", tags)
        if changes.get("custom_fields"):
            fields = list(ticket["custom_fields"])
            at = {f["id"]: n for n, f in enumerate(fields)}
            for item in changes["custom_fields"]:
                if not isinstance(item, dict):
                    continue
                field_id = item.get("id")
                if field_id not in at:
                    known = self.ticket_fields.get(field_id) if field_id is not None else None
                    if known is None or not known["removable"]:
                        continue  # unknown ids are ignored, as Zendesk does
                    at[field_id] = len(fields)
                    fields.append({"id": field_id, "value": None})
                fields[at[field_id]] = {**fields[at[field_id]], "value": item.get("value")}
            change("custom_fields", fields)
        self._bump(ticket)
        self._record_event(ticket, audit_id, actor_id, via, events, creating)
        return {
            "id": audit_id,
            "ticket_id": ticket["id"],
            "created_at": ticket["updated_at"],
            "author_id": actor_id,
            "metadata": {"system": {"client": "syncd-sandbox"}, "custom": copy.deepcopy(changes.get("metadata") or {})},
            "via": {"channel": via, "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }

    def _record_event(
        self, ticket: dict, audit_id: int, actor_id: int, via: str, events: list[dict], creating: bool
    ) -> None:
        """The update as the ticket events export lists it: one event, its changes and
        comments as child events (field changes named by field, as Zendesk does)."""
        children = []
        for event in events:
            if event["type"] == "Comment":
                comment = {k: v for k, v in event.items() if k != "type"}
                children.append({**comment, "via_reference_id": None, "event_type": "Comment"})
            else:
                child = {
                    "id": event["id"],
                    "via": via,
                    "via_reference_id": None,
                    event["field_name"]: event["value"],
                    "event_type": "Create" if creating else "Change",
                }
                if not creating:
                    child["previous_value"] = event["previous_value"]
                children.append(child)
        when = _stored_time(ticket["updated_at"])
        self.ticket_events.append(
            (
                int(when.timestamp()),
                {
                    "id": audit_id,
                    "ticket_id": ticket["id"],
                    "timestamp": int(when.timestamp()),
                    "created_at": ticket["updated_at"],
                    "updater_id": actor_id,
                    "via": via,
                    "system": {"client": "syncd-sandbox"},
                    "event_type": "Audit",
                    "child_events": children,
                    "merged_ticket_ids": [],
                },
            )
        )

    def _add_comment(
        self, ticket: dict, comment: dict, author_id: int, audit_id: int, via: str, metadata: dict | None
    ) -> dict:
        body = comment.get("body")
        html_body = comment.get("html_body")
        if body is None:
            body = html.unescape(re.sub(r"<[^>]+>", "", html_body or "")).strip()
        if html_body is None:
            paragraphs = "".join(f'<p dir="auto">{html.escape(p)}</p>' for p in str(body).split("\n\n"))
            html_body = f'<div class="zd-comment" dir="auto">{paragraphs}</div>'
        saved: dict[str, Any] = {
            "id": self._id("comment"),
            "type": "Comment",
            "author_id": author_id,
            "body": str(body),
            "html_body": html_body,
            "plain_body": str(body),
            "public": bool(comment.get("public", True)),
            "attachments": [],
            "audit_id": audit_id,
            "via": {"channel": via, "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": self._now(),
            "metadata": {"system": {"client": "syncd-sandbox"}, "custom": copy.deepcopy(metadata or {})},
        }
        self.comments[ticket["id"]].append(saved)
        return saved

    # -- HTTP plumbing --------------------------------------------------------------

    def normalize_path(self, path: str) -> str:
        return path[:-5] if path.endswith(".json") else path

    def _authenticate(self, request: FakeRequest) -> int | None:
        value = (request.headers.get("authorization") or "").strip()
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            return self.oauth_tokens.get(credentials.strip())
        if scheme.lower() != "basic":
            return None
        try:
            user, _, secret = _unb64(credentials.strip()).partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        email, _, kind = user.partition("/")
        if kind != "token" or secret not in self.api_tokens:
            return None
        for candidate in self.users.values():
            if candidate["email"].lower() == email.lower() and candidate["role"] in ("agent", "admin"):
                return candidate["id"]
        return None

    def _budget(self, request: FakeRequest) -> tuple[dict[str, str], FakeResponse | None]:
        """Charge the per-minute budgets; answer 429 with Retry-After when one is spent."""
        now = self.clock()
        minute = int(now.timestamp() // 60)
        if minute != self._minute:
            self._minute, self._used = minute, {}
        retry_after = str(max(1, math.ceil((minute + 1) * 60 - now.timestamp())))
        buckets = [("account", self.limit_per_minute)]
        if request.path == "/api/v2/incremental/tickets/cursor":
            buckets.append(("export", self.export_limit_per_minute))
        elif request.path == "/api/v2/incremental/ticket_events":
            buckets.append(("events", self.export_limit_per_minute))  # each export has its own 10 a minute
        limit = self.limit_per_minute or DEFAULT_LIMIT_PER_MINUTE
        for bucket, budget in buckets:
            if budget is not None and self._used.get(bucket, 0) >= budget:
                headers = self._rate_headers(limit, retry_after)
                headers["Retry-After"] = retry_after
                return headers, FakeResponse(
                    429,
                    {
                        "error": "APIRateLimitExceeded",
                        "description": "Number of allowed API requests per minute exceeded",
                    },
                    headers,
                )
        for bucket, _ in buckets:
            self._used[bucket] = self._used.get(bucket, 0) + 1
        return self._rate_headers(limit, retry_after), None

    def _rate_headers(self, limit: int, reset: str) -> dict[str, str]:
        remaining = str(max(0, limit - self._used.get("account", 0)))
        return {
            "x-rate-limit": str(limit),
            "x-rate-limit-remaining": remaining,
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": remaining,
            "ratelimit-reset": reset,
            "x-zendesk-api-version": "v2",
        }

    def dispatch(self, request: FakeRequest) -> tuple[str, FakeResponse]:
        with self.lock:
            headers, refused = self._budget(request)
            actor = self._authenticate(request)
            if actor is None:
                return f"{request.method} (unauthenticated)", FakeResponse(401, dict(UNAUTHORIZED), headers)
            if refused is not None:
                return f"{request.method} (rate limited)", refused
            self._actor = actor
            try:
                endpoint, response = super().dispatch(request)
            finally:
                self._actor = None
            response.headers = {**headers, **response.headers}
            return endpoint, response

    def _body(self, request: FakeRequest) -> Any:
        try:
            return request.json()
        except ValueError:
            raise bad_request("The request body is not valid JSON") from None

    def _ticket_body(self, request: FakeRequest) -> dict:
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("ticket"), dict):
            raise bad_request('Expected a JSON body of the form {"ticket": {...}}')
        return body["ticket"]

    # -- handlers -----------------------------------------------------------------

    def _actor_id(self) -> int:
        """The user the request in hand authenticated as (dispatch sets it before any handler runs)."""
        assert self._actor is not None
        return self._actor

    def _h_me(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, {"user": self._user_json(self.users[self._actor_id()])})

    def _h_user(self, request: FakeRequest) -> FakeResponse:
        number = _int(request.params["id"])
        user = self.users.get(number) if number is not None else None
        if user is None:
            raise HttpFault(404, NOT_FOUND)
        return FakeResponse(200, {"user": self._user_json(user)})

    def _h_organization(self, request: FakeRequest) -> FakeResponse:
        number = _int(request.params["id"])
        org = self.organizations.get(number) if number is not None else None
        if org is None:
            raise HttpFault(404, NOT_FOUND)
        return FakeResponse(200, {"organization": self._org_json(org)})

    def _h_export(self, request: FakeRequest) -> FakeResponse:
        if self.users[self._actor_id()]["role"] != "admin":
            raise HttpFault(
                403,
                {
                    "error": "Forbidden",
                    "description": "You do not have access to this page. "
                    "Please contact the account owner of this help desk for further help.",
                },
            )
        per_page = _int(request.arg("per_page") or EXPORT_PAGE_MAX)
        if per_page is None or per_page < 1:
            raise bad_request("per_page must be a positive integer")
        per_page = min(per_page, EXPORT_PAGE_MAX)
        now = self.clock()
        cursor, start = request.arg("cursor"), request.arg("start_time")
        ordered = sorted(self.tickets.values(), key=lambda t: self._seq[t["id"]])
        if cursor:
            position = _decode_export_cursor(cursor)
            candidates = [t for t in ordered if self._seq[t["id"]] > position]
        elif start is not None:
            start_ts = _int(start)
            if start_ts is None or start_ts < 0:
                raise bad_request("start_time must be a Unix epoch time in seconds")
            if self.exclude_recent and start_ts > (now - RECENT_WINDOW).timestamp():
                raise bad_request("Too recent start_time. Use a start_time at least one minute in the past")
            position = 0
            candidates = [t for t in ordered if _stored_time(t["updated_at"]).timestamp() >= start_ts]
        else:
            raise bad_request("A start_time or cursor parameter is required")
        page: list[dict] = []
        blocked = False
        for ticket in candidates:
            if self.exclude_recent and _stored_time(ticket["updated_at"]) > now - RECENT_WINDOW:
                blocked = True  # later changes wait for the next poll; nothing after it may be skipped
                break
            if len(page) == per_page:
                break
            page.append(ticket)
        more = not blocked and len(candidates) > len(page)
        if page:
            last = page[-1]
            after = _encode_export_cursor(_stored_time(last["updated_at"]), self._seq[last["id"]])
        elif cursor:
            after = cursor
        else:
            end = self._seq[candidates[0]["id"]] - 1 if candidates else self._next_seq
            assert start_ts is not None  # no cursor: read from start_time above
            after = _encode_export_cursor(datetime.fromtimestamp(start_ts, timezone.utc), end)
        before = None
        if cursor and page:
            before = _encode_export_cursor(_stored_time(page[0]["updated_at"]), self._seq[page[0]["id"]] - 1)
        extra = {k: v for k, v in (("per_page", request.arg("per_page")), ("include", request.arg("include"))) if v}
        link = lambda c: self._url("/api/v2/incremental/tickets/cursor.json?" + urlencode({"cursor": c, **extra}))  # noqa: E731
        tickets = []
        for t in page:
            item = self._ticket_json(t)
            item["generated_timestamp"] = int(_stored_time(t["updated_at"]).timestamp())
            tickets.append(self.shaped(item))
        body = {
            "tickets": tickets,
            "after_url": link(after),
            "after_cursor": after,
            "before_url": link(before) if before else None,
            "before_cursor": before,
            "end_of_stream": not more,
        }
        body.update(self._sideloads(request, page))
        return FakeResponse(200, body)

    def _h_ticket_events(self, request: FakeRequest) -> FakeResponse:
        """The time-based ticket events export: events at or after ``start_time``, oldest
        first, up to a page; ``end_time`` is the last one's second and the next page
        starts there (so it repeats that second: clients de-duplicate by id).
        Without the ``comment_events`` sideload a comment shows only as
        ``comment_present``/``comment_public``."""
        if self.users[self._actor_id()]["role"] != "admin":
            raise HttpFault(
                403,
                {
                    "error": "Forbidden",
                    "description": "You do not have access to this page. "
                    "Please contact the account owner of this help desk for further help.",
                },
            )
        start = _int(request.arg("start_time"))
        if start is None or start < 0:
            raise bad_request("start_time must be a Unix epoch time in seconds")
        now = self.clock()
        if self.exclude_recent and start > (now - RECENT_WINDOW).timestamp():
            raise bad_request("Too recent start_time. Use a start_time at least one minute in the past")
        comments = "comment_events" in {x.strip() for x in (request.arg("include") or "").split(",")}
        cutoff = (now - RECENT_WINDOW).timestamp() if self.exclude_recent else math.inf
        first = bisect.bisect_left(self.ticket_events, start, key=lambda item: item[0])
        page: list[dict] = []
        more = False
        for ts, event in self.ticket_events[first:]:
            if ts > cutoff:
                break
            if len(page) == self.events_page_size:
                more = True
                break
            # A copy of the event and its list of child events, the children themselves shared: nothing
            # changes a stored event, or a ticket's value it holds, in place (see _update).
            page.append({**event, "child_events": list(event["child_events"])})
        if not comments:
            for event in page:
                event["child_events"] = [
                    {"id": c["id"], "comment_present": True, "comment_public": c["public"], "event_type": "Change"}
                    if c["event_type"] == "Comment"
                    else c
                    for c in event["child_events"]
                ]
        end = page[-1]["timestamp"] if page else start
        query = {"start_time": end, **({"include": request.arg("include")} if request.arg("include") else {})}
        return FakeResponse(
            200,
            {
                "ticket_events": page,
                "next_page": self._url("/api/v2/incremental/ticket_events.json?" + urlencode(query)),
                "count": len(page),
                "end_time": end,
                "end_of_stream": not more,
            },
        )

    def _h_show(self, request: FakeRequest) -> FakeResponse:
        ticket = self._ticket(request.params["id"])
        return FakeResponse(200, {"ticket": self._ticket_json(ticket), **self._sideloads(request, [ticket])})

    def _h_list(self, request: FakeRequest) -> FakeResponse:
        """List Tickets, by id, with offset pagination; ``external_id`` filters
        on the exact value (ids need not be unique, so several may match)."""
        per_page = min(max(1, _int(request.arg("per_page") or LIST_PAGE_MAX) or LIST_PAGE_MAX), LIST_PAGE_MAX)
        page = max(1, _int(request.arg("page") or 1) or 1)
        found = sorted(self.tickets.values(), key=lambda t: t["id"])
        external_id = request.arg("external_id")
        if external_id is not None:
            found = [t for t in found if t["external_id"] == external_id]
        chunk = found[(page - 1) * per_page : page * per_page]
        query = {"external_id": external_id} if external_id is not None else {}

        def link(n: int) -> str:
            return self._url("/api/v2/tickets.json?" + urlencode({**query, "page": n, "per_page": per_page}))

        return FakeResponse(
            200,
            {
                "tickets": [self._ticket_json(t) for t in chunk],
                "next_page": link(page + 1) if page * per_page < len(found) else None,
                "previous_page": link(page - 1) if page > 1 else None,
                "count": len(found),
                **self._sideloads(request, chunk),
            },
        )

    def _h_show_many(self, request: FakeRequest) -> FakeResponse:
        ids = _id_list(request.arg("ids"))
        found = [self.tickets[i] for i in ids if i in self.tickets]
        return FakeResponse(
            200,
            {
                "tickets": [self._ticket_json(t) for t in found],
                "next_page": None,
                "previous_page": None,
                "count": len(found),
                **self._sideloads(request, found),
            },
        )

    def _h_create(self, request: FakeRequest) -> FakeResponse:
        ticket, audit = self._create(self._ticket_body(request), actor_id=self._actor_id(), via="api")
        return FakeResponse(
            201,
            {"ticket": self._ticket_json(ticket), "audit": audit},
            {"Location": self._url(f"/api/v2/tickets/{ticket['id']}.json")},
        )

    def _h_update(self, request: FakeRequest) -> FakeResponse:
        ticket = self._ticket(request.params["id"])
        audit = self._update(ticket, self._ticket_body(request), actor_id=self._actor_id(), via="api")
        return FakeResponse(200, {"ticket": self._ticket_json(ticket), "audit": audit})

    def _h_update_many(self, request: FakeRequest) -> FakeResponse:
        body = self._body(request)
        if not isinstance(body, dict):
            raise bad_request("Expected a JSON object body")
        if request.arg("ids") is not None:
            if not isinstance(body.get("ticket"), dict):
                raise bad_request('With ids=, the body must be {"ticket": {...}}')
            items: list[tuple[Any, Any]] = [(i, body["ticket"]) for i in _id_list(request.arg("ids"))]
        elif isinstance(body.get("tickets"), list):
            items = [(t.get("id") if isinstance(t, dict) else None, t) for t in body["tickets"]]
        else:
            raise bad_request('Give ids= with {"ticket": {...}}, or {"tickets": [{"id": ...}, ...]}')
        if not items or len(items) > 100:
            raise bad_request("Update many accepts between 1 and 100 tickets")
        results = []
        for ticket_id, changes in items:
            try:
                ticket = self._ticket(ticket_id)
                self._update(
                    ticket, {k: v for k, v in changes.items() if k != "id"}, actor_id=self._actor_id(), via="api"
                )
                # As recorded from Zendesk (and its UpdateResourceResult): no index on an update's result.
                results.append({"id": ticket["id"], "action": "update", "status": "Updated", "success": True})
            except HttpFault as fault:
                error = fault.response.body or {}
                details = error.get("description", "")
                if isinstance(error.get("details"), dict):
                    details = "; ".join(d["description"] for ds in error["details"].values() for d in ds)
                results.append(
                    {
                        "id": ticket_id,
                        "action": "update",
                        "success": False,
                        "status": "Failed",
                        "error": error.get("error", "Error"),
                        "details": details,
                    }
                )
        job_id = "V3-" + f"{self.rng.getrandbits(128):032x}"
        self.jobs[job_id] = {
            "id": job_id,
            "job_type": "bulk_update",
            "total": len(items),
            "results": results,
            "polls_left": self.job_polls,
            "finished_at": self._now(),
        }
        return FakeResponse(200, {"job_status": self._job_json(job_id, done=False)})

    def _job_json(self, job_id: str, *, done: bool) -> dict:
        job = self.jobs[job_id]
        url = self._url(f"/api/v2/job_statuses/{job_id}.json")
        if not done:
            return {
                "id": job_id,
                "url": url,
                "job_type": job["job_type"],
                "total": job["total"],
                "progress": None,
                "status": "queued",
                "message": None,
                "results": None,
            }
        return {
            "id": job_id,
            "url": url,
            "job_type": job["job_type"],
            "total": job["total"],
            "progress": job["total"],
            "status": "completed",
            "message": f"Completed at {job['finished_at'].replace('T', ' ').replace('Z', ' +0000')}",
            "results": copy.deepcopy(job["results"]),
        }

    def _h_job(self, request: FakeRequest) -> FakeResponse:
        job_id = request.params["id"]
        job = self.jobs.get(job_id)
        if job is None:
            raise HttpFault(404, NOT_FOUND)
        if job["polls_left"] > 0:
            job["polls_left"] -= 1
            working = self._job_json(job_id, done=False)
            working.update(status="working", progress=0)
            return FakeResponse(200, {"job_status": working})
        return FakeResponse(200, {"job_status": self._job_json(job_id, done=True)})

    def _h_jobs(self, request: FakeRequest) -> FakeResponse:
        """Show Many Job Statuses: each asked job as Show Job Status would answer it
        (each poll counts for every job in it); unknown ids are left out."""
        text = request.arg("ids") or ""
        ids = [i.strip() for i in text.split(",") if i.strip()]
        if not ids:
            raise bad_request("ids must be a comma-separated list of job status ids")
        statuses = []
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if job["polls_left"] > 0:
                job["polls_left"] -= 1
                working = self._job_json(job_id, done=False)
                working.update(status="working", progress=0)
                statuses.append(working)
            else:
                statuses.append(self._job_json(job_id, done=True))
        return FakeResponse(200, {"job_statuses": statuses})

    def _h_comments(self, request: FakeRequest) -> FakeResponse:
        ticket = self._ticket(request.params["id"])
        comments = list(self.comments[ticket["id"]])
        sort = request.arg("sort") or ""
        descending = sort == "-created_at" or (request.arg("sort_order") or "asc").lower() == "desc"
        if descending:
            comments.reverse()
        path = f"/api/v2/tickets/{ticket['id']}/comments.json"
        cursor_mode = any(k.startswith("page[") for k in request.query)
        if not cursor_mode:
            page = _int(request.arg("page") or 1) or 1
            per_page = min(
                max(1, _int(request.arg("per_page") or COMMENTS_PAGE_MAX) or COMMENTS_PAGE_MAX), COMMENTS_PAGE_MAX
            )
            chunk = comments[(page - 1) * per_page : page * per_page]
            nxt = self._url(f"{path}?page={page + 1}&per_page={per_page}") if page * per_page < len(comments) else None
            prev = self._url(f"{path}?page={page - 1}&per_page={per_page}") if page > 1 else None
            return FakeResponse(
                200, {"comments": copy.deepcopy(chunk), "next_page": nxt, "previous_page": prev, "count": len(comments)}
            )
        size = _int(request.arg("page[size]") or COMMENTS_PAGE_MAX)
        if size is None or size < 1:
            raise bad_request("page[size] must be a positive integer")
        size = min(size, COMMENTS_PAGE_MAX)
        ids = [c["id"] for c in comments]
        start, end = 0, len(comments)
        if page_after := request.arg("page[after]"):
            anchor = _decode_comment_cursor(page_after)
            start = next((i for i, cid in enumerate(ids) if (cid < anchor if descending else cid > anchor)), len(ids))
            chunk = comments[start : start + size]
            has_more = start + size < end
        elif page_before := request.arg("page[before]"):
            anchor = _decode_comment_cursor(page_before)
            end = next((i for i, cid in enumerate(ids) if (cid <= anchor if descending else cid >= anchor)), len(ids))
            chunk = comments[max(0, end - size) : end]
            has_more = end - size > 0
        else:
            chunk = comments[:size]
            has_more = size < end
        after = _encode_comment_cursor(chunk[-1]["id"]) if chunk else None
        before = _encode_comment_cursor(chunk[0]["id"]) if chunk else None

        def link(key: str, value: str | None) -> str | None:
            if not value:
                return None
            params = {key: value, "page[size]": str(size)}
            if sort := request.arg("sort"):
                params["sort"] = sort
            return self._url(f"{path}?{urlencode(params)}")

        return FakeResponse(
            200,
            {
                "comments": copy.deepcopy(chunk),
                "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
                "links": {
                    "next": link("page[after]", after) if has_more else None,
                    "prev": link("page[before]", before),
                },
            },
        )

    def _tags_body(self, request: FakeRequest) -> dict:
        body = self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            raise bad_request('Expected a JSON body of the form {"tags": [...]}')
        return body

    def _tags_change(self, request: FakeRequest, key: str) -> FakeResponse:
        ticket = self._ticket(request.params["id"])
        body = self._tags_body(request)
        changes = {key: body["tags"]}
        for k in ("safe_update", "updated_stamp"):
            if k in body:
                changes[k] = body[k]
        self._update(ticket, changes, actor_id=self._actor_id(), via="api")
        return FakeResponse(200, {"tags": list(ticket["tags"])})

    def _h_tags_get(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, {"tags": list(self._ticket(request.params["id"])["tags"])})

    def _h_tags_set(self, request: FakeRequest) -> FakeResponse:
        response = self._tags_change(request, "tags")
        response.status = 201
        return response

    def _h_tags_add(self, request: FakeRequest) -> FakeResponse:
        return self._tags_change(request, "additional_tags")

    def _h_tags_remove(self, request: FakeRequest) -> FakeResponse:
        self._tags_change(request, "remove_tags")
        return FakeResponse(204, None)

    def _h_fields(self, request: FakeRequest) -> FakeResponse:
        fields = []
        for field in self.ticket_fields.values():
            fields.append({**copy.deepcopy(field), "url": self._url(f"/api/v2/ticket_fields/{field['id']}.json")})
        return FakeResponse(
            200, {"ticket_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)}
        )


# --- small helpers ----------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unique(items: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(item), None)
    return list(seen)


def _id_list(text: str | None) -> list[int]:
    ids = []
    for part in (text or "").split(","):
        value = _int(part.strip())
        if value is None:
            raise bad_request(f"ids must be a comma-separated list of ticket ids, got {part.strip()!r}")
        ids.append(value)
    return ids


def _encode_export_cursor(when: datetime, position: int) -> str:
    # Same outline as Zendesk's own cursors ("<epoch>.0||<n>|"); clients must treat it as opaque.
    return _b64(f"{int(when.timestamp())}.0||{position}|")


def _decode_export_cursor(cursor: str) -> int:
    try:
        _, _, rest = _unb64(cursor).partition("||")
        return int(rest.rstrip("|").split("|")[0])
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid cursor") from None


def _encode_comment_cursor(comment_id: int) -> str:
    return _b64(json.dumps({"o": "id", "v": comment_id}))


def _decode_comment_cursor(cursor: str) -> int:
    try:
        return int(json.loads(_unb64(cursor))["v"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise bad_request("Invalid page cursor") from None
