"""A fake of Intercom's REST API (version 2.15) for the sandbox, end-to-end tests and the exam.

It speaks the wire format of Intercom's OpenAPI description: bearer tokens
(``error.list`` bodies on refusal), ``X-RateLimit-*`` headers, ``GET /me``
with its app, ticket types with their attributes, ticket states, tags,
contacts and companies, and the two kinds of support record: tickets and
conversations. A ticket is a conversation too (one id space, as in
Intercom): ``GET /conversations/{id}`` answers for a ticket with its tags and
parts. Search (``POST /tickets/search``, ``/conversations/search``) filters
on ``updated_at`` and the other fields the description lists, with cursor
pagination (``pages.next.starting_after``); like the real API it sorts by
nothing the client may rely on, so this fake returns newest first.

Every timestamp is a Unix second from ``self.clock``. The helper methods
(``create_ticket``, ``customer_reply``, ``set_state`` ...) act as people in
Intercom's UI; they never go through HTTP and are not counted.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from syncd.sandbox.server import FakeRequest, FakeResponse, FakeService, HttpFault

SANDBOX_TOKEN = "ic-sandbox-token-000000000000000000"  # only the sandbox accepts it
SANDBOX_WORKSPACE = "sbx1ntc0"
SANDBOX_ADMIN_EMAIL = "syncd-bot@sandbox.example"
DEFAULT_LIMIT = 10000  # calls a minute per app (Intercom's documentation)
WINDOW = 10  # seconds: Intercom spreads the minute's budget over 10-second windows
PAGE_DEFAULT = 20
PAGE_MAX = 150
STATE_CATEGORIES = ("submitted", "in_progress", "waiting_on_customer", "resolved")
TITLE = "_default_title_"
DESCRIPTION = "_default_description_"


def error(status: int, code: str, message: str) -> HttpFault:
    return HttpFault(
        status,
        {
            "type": "error.list",
            "request_id": f"00000000-0000-4000-8000-{status:012d}",
            "errors": [{"code": code, "message": message}],
        },
    )


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _unb64(text: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, UnicodeDecodeError):
        raise error(400, "parameter_invalid", "starting_after is not a valid cursor") from None
    if not isinstance(value, dict):
        raise error(400, "parameter_invalid", "starting_after is not a valid cursor")
    return value


class IntercomFake(FakeService):
    """An in-memory Intercom workspace served over HTTP."""

    name = "intercom"
    # Searches and batch reads sent by POST change nothing: no webhook for them.
    reads_by_post = ("/search",)
    default_port = 8805
    world = "connectors.intercom.seed:IntercomWorld"
    secrets = {"token": SANDBOX_TOKEN}

    def connector_config(self) -> list[str]:
        return [f'workspace_id = "{self.workspace_id}"', f'app_url = "{self.app_url()}"']

    def playground_config(self) -> list[str]:
        """The attributes the seed made, named for the connector (after seed_handoff_world)."""
        keys = {"status": "status_attribute", "stage": "stage_attribute", "link": "link_attribute"}
        return [f"{keys[k]} = {json.dumps(v)}" for k, v in self.seeded_attributes.items()]

    def describe(self, url: str) -> str:
        return f"{url}  (Authorization: Bearer {SANDBOX_TOKEN}; Intercom-Version: 2.15)"

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        limit_per_minute: int | None = None,
        token: str = SANDBOX_TOKEN,
        workspace_id: str = SANDBOX_WORKSPACE,
    ):
        super().__init__(seed=seed)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self.limit_per_minute = limit_per_minute  # None: report headers, never refuse
        self.workspace_id = workspace_id
        self.tokens = {token}
        self._next = {"admin": 7310000, "contact": 0, "company": 0, "conversation": 215470000000, "part": 31000000000}
        self._next.update({"ticket_number": 0, "tag": 8800000, "state": 4000, "type": 60, "attribute": 9100})
        self.admins: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}
        self.companies: dict[str, dict] = {}
        self.tags: dict[str, dict] = {}
        self.ticket_states: dict[str, dict] = {}
        self.ticket_types: dict[str, dict] = {}
        self.conversations: dict[str, dict] = {}  # tickets too: a ticket is a conversation with "ticket" set
        self.seeded_attributes: dict[str, str] = {}  # "status"/"stage"/"link" -> attribute name (seed_handoff_world)
        self._window: int | None = None
        self._used = 0
        self._actor: str | None = None
        self.api_admin = self.add_admin("syncd (API)", SANDBOX_ADMIN_EMAIL)
        for category, label in (
            ("submitted", "Submitted"),
            ("in_progress", "In progress"),
            ("waiting_on_customer", "Waiting on customer"),
            ("resolved", "Resolved"),
        ):
            self.add_ticket_state(category, label)
        self.default_type = self.add_ticket_type("Customer request")
        self._routes()

    def _routes(self) -> None:
        r = self.route
        r("GET", "/me", self._h_me)
        r("GET", "/ticket_types", self._h_ticket_types)
        r("GET", "/ticket_states", self._h_ticket_states)
        r("GET", "/tags", self._h_tags)
        r("POST", "/tags", self._h_tag_create)
        r("GET", "/contacts/{id}", self._h_contact)
        r("GET", "/companies/{id}", self._h_company)
        r("POST", "/tickets/search", self._h_ticket_search)
        r("GET", "/tickets/{id}", self._h_ticket)
        r("PUT", "/tickets/{id}", self._h_ticket_update)
        r("POST", "/tickets/{id}/reply", self._h_ticket_reply)
        r("POST", "/tickets/{id}/tags", self._h_tag_add)
        r("DELETE", "/tickets/{id}/tags/{tag}", self._h_tag_remove)
        r("POST", "/conversations/search", self._h_conversation_search)
        r("GET", "/conversations/{id}", self._h_conversation)
        r("PUT", "/conversations/{id}", self._h_conversation_update)
        r("POST", "/conversations/{id}/reply", self._h_conversation_reply)
        r("POST", "/conversations/{id}/parts", self._h_conversation_parts)
        r("POST", "/conversations/{id}/tags", self._h_tag_add)
        r("DELETE", "/conversations/{id}/tags/{tag}", self._h_tag_remove)

    # -- ids, time, urls -----------------------------------------------------------

    def _id(self, kind: str) -> str:
        self._next[kind] += 1
        return str(self._next[kind])

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def app_url(self) -> str:
        """Where agents open the workspace: the fake itself (its inbox URLs are not served)."""
        return self.base_url or "https://app.intercom.com"

    def inbox_url(self, conversation_id: str) -> str:
        return f"{self.app_url()}/a/inbox/{self.workspace_id}/inbox/conversation/{conversation_id}"

    # -- people acting in the UI (not HTTP) ------------------------------------------

    def add_admin(self, name: str, email: str) -> dict:
        with self.lock:
            admin = {"type": "admin", "id": self._id("admin"), "name": name, "email": email}
            self.admins[admin["id"]] = admin
            return admin

    def add_company(self, name: str, *, plan: str | None = None) -> dict:
        with self.lock:
            now = self._now()
            cid = f"{self._id('company'):0>8}c0ffee{self.rng.getrandbits(40):010x}"
            company: dict[str, Any] = {
                "type": "company",
                "id": cid,
                "name": name,
                "app_id": self.workspace_id,
                "company_id": f"ext-{len(self.companies) + 1}",
                "created_at": now,
                "updated_at": now,
                "custom_attributes": {},
            }
            if plan:
                company["plan"] = {"type": "plan", "id": str(100 + len(self.companies)), "name": plan}
            self.companies[cid] = company
            return company

    def add_contact(self, name: str, email: str, *, company_id: str | None = None) -> dict:
        with self.lock:
            now = self._now()
            cid = f"{self._id('contact'):0>8}a11ce{self.rng.getrandbits(44):011x}"
            contact = {
                "type": "contact",
                "id": cid,
                "workspace_id": self.workspace_id,
                "role": "user",
                "email": email,
                "name": name,
                "created_at": now,
                "updated_at": now,
                "custom_attributes": {},
                "companies": {
                    "type": "list",
                    "data": (
                        [{"id": company_id, "type": "company", "url": f"/companies/{company_id}"}] if company_id else []
                    ),
                    "url": f"/contacts/{cid}/companies",
                    "total_count": 1 if company_id else 0,
                    "has_more": False,
                },
            }
            self.contacts[cid] = contact
            return contact

    def add_ticket_state(self, category: str, label: str) -> dict:
        if category not in STATE_CATEGORIES:
            raise ValueError(f"ticket state category must be one of {', '.join(STATE_CATEGORIES)}")
        with self.lock:
            state: dict[str, Any] = {
                "type": "ticket_state",
                "id": self._id("state"),
                "category": category,
                "internal_label": label,
                "external_label": label,
                "archived": False,
            }
            self.ticket_states[state["id"]] = state
            return state

    def add_ticket_type(self, name: str, *, category: str = "Customer") -> dict:
        with self.lock:
            now = self._now()
            tid = self._id("type")
            ticket_type: dict[str, Any] = {
                "type": "ticket_type",
                "id": tid,
                "category": category,
                "name": name,
                "description": "",
                "icon": "\U0001f39f",
                "workspace_id": self.workspace_id,
                "archived": False,
                "created_at": now,
                "updated_at": now,
                "attributes": [],
            }
            self.ticket_types[tid] = ticket_type
            self.add_ticket_attribute(tid, TITLE, default=True)
            self.add_ticket_attribute(tid, DESCRIPTION, default=True)
            return ticket_type

    def add_ticket_attribute(
        self, type_id: str, name: str, data_type: str = "string", *, default: bool = False, multiline: bool = False
    ) -> dict:
        """An attribute of a ticket type (``data_type``: string, list, integer, decimal, boolean, datetime, files;
        ``multiline``: a text attribute shown as a text area)."""
        with self.lock:
            now = self._now()
            attribute = {
                "type": "ticket_type_attribute",
                "id": self._id("attribute"),
                "workspace_id": self.workspace_id,
                "name": name,
                "description": "",
                "data_type": data_type,
                "input_options": {"multiline": True} if multiline else {},
                "order": len(self.ticket_types[type_id]["attributes"]),
                "required_to_create": name == TITLE,
                "required_to_create_for_contacts": False,
                "visible_on_create": True,
                "visible_to_contacts": default,
                "default": default,
                "ticket_type_id": int(type_id),
                "archived": False,
                "created_at": now,
                "updated_at": now,
            }
            self.ticket_types[type_id]["attributes"].append(attribute)
            return attribute

    def create_ticket(
        self,
        title: str,
        description: str,
        *,
        contact_id: str,
        type_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        state: str = "submitted",
        admin_assignee_id: str | None = None,
        tags: Sequence[str] = (),
        created_at: int | None = None,
        priority: bool = False,
    ) -> dict:
        """A customer opens a ticket; returns the stored conversation (with its ``ticket``; ``priority``:
        marked as a priority in the inbox)."""
        with self.lock:
            record = self._new_conversation(contact_id, description, title=title, created_at=created_at)
            if priority:
                record["priority"] = "priority"
            type_id = type_id or self.default_type["id"]
            record["ticket"] = {
                "ticket_id": self._id("ticket_number"),
                "type_id": type_id,
                "state_id": self._state_id(state),
                "attributes": {TITLE: title, DESCRIPTION: description, **(attributes or {})},
                "is_shared": True,
            }
            record["title"] = title
            record["admin_assignee_id"] = admin_assignee_id
            for tag in tags:
                self._apply_tag(record, self.tag_named(tag)["id"], None)
            return copy.deepcopy(record)

    def create_conversation(self, body: str, *, contact_id: str, created_at: int | None = None) -> dict:
        """A customer writes in through the Messenger; returns the stored conversation."""
        with self.lock:
            return copy.deepcopy(self._new_conversation(contact_id, body, title=None, created_at=created_at))

    def customer_reply(self, conversation_id: str, body_html: str) -> dict:
        """The customer replies; a ticket waiting on them goes back in progress, a closed one reopens."""
        with self.lock:
            record = self._record(conversation_id)
            contact = record["contact_ids"][0] if record["contact_ids"] else None
            author = {"type": "user", "id": contact, "name": self.contacts.get(contact or "", {}).get("name")}
            part = self._add_part(record, "comment", body_html, author)
            if record.get("ticket") and self._category(record) in ("waiting_on_customer", "resolved"):
                record["ticket"]["state_id"] = self._state_id("in_progress")
            record["open"], record["state"] = True, "open"
            return copy.deepcopy(part)

    def admin_note(self, conversation_id: str, body_html: str, *, admin_id: str) -> dict:
        """An agent adds an internal note in the inbox."""
        with self.lock:
            record = self._record(conversation_id)
            return copy.deepcopy(self._add_part(record, "note", body_html, self._author(admin_id)))

    def admin_reply(self, conversation_id: str, body_html: str, *, admin_id: str) -> dict:
        """An agent replies to the customer in the inbox (a public part)."""
        with self.lock:
            record = self._record(conversation_id)
            return copy.deepcopy(self._add_part(record, "comment", body_html, self._author(admin_id)))

    def set_state(self, conversation_id: str, category: str, *, admin_id: str | None = None) -> dict:
        """An agent moves a ticket to a state of ``category`` (resolved closes it, like the inbox)."""
        with self.lock:
            record = self._record(conversation_id)
            self._set_ticket_state(record, self._state_id(category), admin_id or self.api_admin["id"])
            return copy.deepcopy(record)

    def assign(self, conversation_id: str, admin_id: str) -> None:
        with self.lock:
            record = self._record(conversation_id)
            record["admin_assignee_id"] = admin_id
            self._add_part(record, "assignment", None, self._author(admin_id))

    def snooze(self, conversation_id: str, until: int, *, admin_id: str) -> None:
        """An agent snoozes a ticket or conversation until a Unix time (the inbox's "snooze")."""
        with self.lock:
            record = self._record(conversation_id)
            record["snoozed_until"] = until
            if record.get("ticket") is None:
                record["state"] = "snoozed"
            self._add_part(record, "snoozed", None, self._author(admin_id))

    def set_attribute(self, conversation_id: str, name: str, value: Any) -> None:
        """An agent fills a ticket attribute in the inbox."""
        with self.lock:
            record = self._record(conversation_id)
            record["ticket"]["attributes"][name] = value
            self._touch(record)

    def add_tag(self, conversation_id: str, name: str) -> None:
        """An agent tags a ticket or conversation in the inbox (the tag is made when new)."""
        with self.lock:
            self._apply_tag(self._record(conversation_id), self.tag_named(name)["id"], None)

    def tag_named(self, name: str) -> dict:
        with self.lock:
            found = next((t for t in self.tags.values() if t["name"] == name), None)
            if found is None:
                found = {"type": "tag", "id": self._id("tag"), "name": name}
                self.tags[found["id"]] = found
            return found

    def record(self, conversation_id: str) -> dict:
        """The stored record (a copy), for tests and the demo."""
        with self.lock:
            return copy.deepcopy(self._record(conversation_id))

    def notes(self, conversation_id: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(p) for p in self._record(conversation_id)["parts"] if p["part_type"] == "note"]

    def tag_names(self, conversation_id: str) -> list[str]:
        with self.lock:
            return [self.tags[t]["name"] for t in self._record(conversation_id)["tag_ids"]]

    def attribute(self, conversation_id: str, name: str) -> Any:
        with self.lock:
            return self._record(conversation_id)["ticket"]["attributes"].get(name)

    # -- the connector exam (connectors/testing.py) ------------------------------------

    def exam_config(self) -> dict[str, Any]:
        return {"token": next(iter(sorted(self.tokens))), "workspace_id": self.workspace_id, "backfill_days": 1}

    def exam_bad_credentials(self) -> dict[str, Any]:
        return {"token": "not-a-sandbox-token"}

    def exam_create(self, title: str) -> str:
        contact = next((c for c in self.contacts.values() if c["email"] == "exam@example.com"), None)
        if contact is None:
            contact = self.add_contact("Exam Customer", "exam@example.com")
        return str(self.create_ticket(title, f"{title}: it does not work", contact_id=contact["id"])["id"])

    def exam_missing(self) -> str:
        return "999999999"

    # -- the sandbox seed ------------------------------------------------------------------

    def seed_handoff_world(self, issue_keys: dict[str, str]) -> dict[str, Any]:
        """A small support desk whose tickets name tracker issues, for the sandbox and e2e runs.

        ``issue_keys``: short name -> the tracker's key (e.g. ``{"sso": "ENG-1"}``)
        of the issues the tickets mention. Creates the attributes syncd writes
        (``Linked issue status``, ``Follow-up stage``) and reads (``Linked
        issue``), two companies with contacts, an agent, and one ticket per
        key: its description names the key, the first one's ``Linked issue``
        attribute too. Returns what it made: ``attributes``, ``agents``,
        ``contacts``, ``tickets`` (short name -> ticket id)."""
        with self.lock:
            type_id = self.default_type["id"]
            attributes = {
                "status": self.add_ticket_attribute(type_id, "Linked issue status")["name"],
                "stage": self.add_ticket_attribute(type_id, "Follow-up stage")["name"],
                "link": self.add_ticket_attribute(type_id, "Linked issue")["name"],
            }
            self.seeded_attributes = dict(attributes)
            northwind = self.add_company("Northwind Logistics", plan="enterprise")
            bluebird = self.add_company("Bluebird Studio", plan="starter")
            hannah = self.add_contact("Hannah Lindqvist", "hannah@northwind.example", company_id=northwind["id"])
            chloe = self.add_contact("Chloe Martin", "chloe@bluebird.example", company_id=bluebird["id"])
            priya = self.add_admin("Priya Raman", "priya@sandbox.example")
            tickets: dict[str, str] = {}
            for index, (short, key) in enumerate(sorted(issue_keys.items())):
                contact = hannah if index % 2 == 0 else chloe
                extra = {attributes["link"]: key} if index == 0 else {}
                ticket = self.create_ticket(
                    f"Problem with {short}",
                    f"<p>Since Monday {short} fails for us. Engineering tracks it as {html.escape(key)}.</p>",
                    contact_id=contact["id"],
                    attributes=extra,
                    state="in_progress",
                    admin_assignee_id=priya["id"],
                )
                tickets[short] = ticket["id"]
            return {
                "attributes": attributes,
                "agents": {"Priya Raman": priya["id"]},
                "contacts": {c["email"]: c["id"] for c in (hannah, chloe)},
                "tickets": tickets,
            }

    # -- internals -----------------------------------------------------------------------

    def _record(self, conversation_id: Any) -> dict:
        record = self.conversations.get(str(conversation_id))
        if record is None:
            raise error(404, "not_found", "Resource Not Found")
        return record

    def _ticket_record(self, ticket_id: Any) -> dict:
        record = self.conversations.get(str(ticket_id))
        if record is None or record.get("ticket") is None:
            raise error(404, "ticket_not_found", "Ticket not found")
        return record

    def _state_id(self, category: str) -> str:
        found = next((s["id"] for s in self.ticket_states.values() if s["category"] == category), None)
        if found is None:
            raise ValueError(f"no ticket state of category {category!r}")
        return found

    def _category(self, record: dict) -> str:
        return self.ticket_states[record["ticket"]["state_id"]]["category"]

    def _author(self, admin_id: str) -> dict:
        admin = self.admins.get(str(admin_id))
        if admin is None:
            raise error(400, "parameter_invalid", "Admin not found")
        return {"type": "admin", "id": admin["id"], "name": admin["name"], "email": admin["email"]}

    def _new_conversation(self, contact_id: str, body: str, *, title: str | None, created_at: int | None) -> dict:
        if contact_id not in self.contacts:
            raise ValueError(f"no contact {contact_id}")
        now = created_at if created_at is not None else self._now()
        cid = self._id("conversation")
        contact = self.contacts[contact_id]
        record: dict[str, Any] = {
            "id": cid,
            "title": title,
            "created_at": now,
            "updated_at": now,
            "open": True,
            "state": "open",
            "snoozed_until": None,
            "priority": "not_priority",
            "admin_assignee_id": None,
            "team_assignee_id": None,
            "contact_ids": [contact_id],
            "tag_ids": [],
            "custom_attributes": {},
            "source": {
                "type": "conversation",
                "id": self._id("part"),
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": body,
                "author": {"type": "user", "id": contact_id, "name": contact["name"], "email": contact["email"]},
                "attachments": [],
                "url": None,
                "redacted": False,
            },
            "parts": [],
            "ticket": None,
        }
        self.conversations[cid] = record
        return record

    def _touch(self, record: dict) -> None:
        record["updated_at"] = max(self._now(), record["updated_at"])

    def _add_part(self, record: dict, part_type: str, body: str | None, author: dict) -> dict:
        now = self._now()
        part: dict[str, Any] = {
            "type": "conversation_part",
            "id": self._id("part"),
            "part_type": part_type,
            "body": body,
            "created_at": now,
            "updated_at": now,
            "notified_at": now,
            "author": author,
            "attachments": [],
            "external_id": None,
            "redacted": False,
        }
        record["parts"].append(part)
        self._touch(record)
        return part

    def _set_ticket_state(self, record: dict, state_id: str, admin_id: str) -> None:
        ticket = record["ticket"]
        if ticket["state_id"] != state_id:
            previous = self.ticket_states[ticket["state_id"]]["category"]
            ticket["state_id"] = state_id
            category = self.ticket_states[state_id]["category"]
            part = self._add_part(record, "ticket_state_updated_by_admin", None, self._author(admin_id))
            part.update(ticket_state=category, previous_ticket_state=previous)
            if category == "resolved":
                record["open"], record["state"] = False, "closed"
            else:
                record["open"], record["state"] = True, "open"

    def _apply_tag(self, record: dict, tag_id: str, admin_id: str | None) -> dict:
        if tag_id not in self.tags:
            raise error(404, "tag_not_found", "Tag not found")
        if tag_id not in record["tag_ids"]:
            record["tag_ids"].append(tag_id)
            self._touch(record)
        applied = {"type": "admin", "id": admin_id} if admin_id else None
        return {**self.tags[tag_id], "applied_at": self._now(), "applied_by": applied}

    # -- serialisation ----------------------------------------------------------------------

    def _ticket_state_json(self, state_id: str) -> dict:
        state = self.ticket_states[state_id]
        return {k: state[k] for k in ("type", "id", "category", "internal_label", "external_label")}

    def _ticket_type_json(self, type_id: str, *, with_states: bool = False) -> dict:
        ticket_type = self.ticket_types[type_id]
        out = {k: v for k, v in ticket_type.items() if k != "attributes"}
        out["ticket_type_attributes"] = {
            "type": "ticket_type_attributes.list",
            "ticket_type_attributes": copy.deepcopy(ticket_type["attributes"]),
        }
        if with_states:
            out["ticket_states"] = {
                "type": "list",
                "data": [
                    self._ticket_state_json(s) for s in self.ticket_states if not self.ticket_states[s]["archived"]
                ],
            }
        return out

    def _parts_json(self, record: dict, kind: str) -> list[dict]:
        parts = []
        for part in record["parts"]:
            item = copy.deepcopy(part)
            if kind == "ticket":
                item["type"] = "ticket_part"
                item.pop("notified_at", None)
                for key in ("ticket_state", "previous_ticket_state"):
                    if item.get(key) is None:
                        item.pop(key, None)
            parts.append(item)
        return parts

    def _ticket_json(self, record: dict) -> dict:
        ticket = record["ticket"]
        assignee = record["admin_assignee_id"]
        out = {
            "type": "ticket",
            "id": record["id"],
            "ticket_id": ticket["ticket_id"],
            "category": self.ticket_types[ticket["type_id"]]["category"],
            "ticket_attributes": copy.deepcopy(ticket["attributes"]),
            "ticket_state": self._ticket_state_json(ticket["state_id"]),
            "ticket_type": self._ticket_type_json(ticket["type_id"]),
            "contacts": {
                "type": "contact.list",
                "contacts": [
                    {"type": "contact", "id": c, "external_id": None}
                    for c in record["contact_ids"]
                    if c in self.contacts
                ],
            },
            "admin_assignee_id": assignee if assignee else "0",
            "team_assignee_id": record["team_assignee_id"] or "0",
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "open": record["open"],
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "ticket_parts": {
                "type": "ticket_part.list",
                "ticket_parts": self._parts_json(record, "ticket"),
                "total_count": len(record["parts"]),
            },
            "is_shared": ticket["is_shared"],
        }
        if record["snoozed_until"]:
            out["snoozed_until"] = record["snoozed_until"]
        return self.shaped(out)

    def _company_of(self, record: dict) -> dict | None:
        contact = self.contacts.get(record["contact_ids"][0]) if record["contact_ids"] else None
        companies = (contact or {}).get("companies", {}).get("data") or []
        return copy.deepcopy(self.companies.get(companies[0]["id"])) if companies else None

    def _conversation_json(self, record: dict, *, full: bool = True) -> dict:
        assignee = record["admin_assignee_id"]
        out: dict[str, Any] = {
            "type": "conversation",
            "id": record["id"],
            "title": record["title"],
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "waiting_since": None,
            "snoozed_until": record["snoozed_until"],
            "open": record["open"],
            "state": record["state"],
            "read": True,
            "priority": record["priority"],
            "admin_assignee_id": int(assignee) if assignee else None,
            "team_assignee_id": int(record["team_assignee_id"]) if record["team_assignee_id"] else None,
            "tags": {"type": "tag.list", "tags": [copy.deepcopy(self.tags[t]) for t in record["tag_ids"]]},
            "source": copy.deepcopy(record["source"]),
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": c, "external_id": None} for c in record["contact_ids"]],
            },
            "teammates": {
                "type": "admin.list",
                "teammates": [
                    {"type": "admin", "id": a}
                    for a in dict.fromkeys(p["author"]["id"] for p in record["parts"] if p["author"]["type"] == "admin")
                ],
            },
            "custom_attributes": copy.deepcopy(record["custom_attributes"]),
            "statistics": {"type": "conversation_statistics", "count_conversation_parts": len(record["parts"])},
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        }
        company = self._company_of(record)
        if company is not None:
            out["company"] = company
        if full:
            out["conversation_parts"] = {
                "type": "conversation_part.list",
                "conversation_parts": self._parts_json(record, "conversation"),
                "total_count": len(record["parts"]),
            }
        return self.shaped(out)

    # -- HTTP plumbing ------------------------------------------------------------------------

    def dispatch(self, request: FakeRequest) -> tuple[str, FakeResponse]:
        with self.lock:
            headers, refused = self._budget()
            value = (request.headers.get("authorization") or "").strip()
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or token.strip() not in self.tokens:
                fault = error(401, "unauthorized", "Access Token Invalid").response
                fault.headers.update(headers)
                return f"{request.method} (unauthenticated)", fault
            if refused is not None:
                return f"{request.method} (rate limited)", refused
            self._actor = self.api_admin["id"]
            try:
                endpoint, response = super().dispatch(request)
            finally:
                self._actor = None
            if endpoint.endswith("(unknown)"):
                response = error(404, "not_found", "Resource Not Found").response
            response.headers = {**headers, **response.headers}
            return endpoint, response

    def _budget(self) -> tuple[dict[str, str], FakeResponse | None]:
        """Intercom's budget per app: the minute's calls spread over 10-second windows."""
        now = self.clock().timestamp()
        window = int(now // WINDOW)
        if window != self._window:
            self._window, self._used = window, 0
        limit = self.limit_per_minute or DEFAULT_LIMIT
        per_window = max(1, limit * WINDOW // 60)
        reset = (window + 1) * WINDOW
        headers = {
            "X-RateLimit-Limit": str(per_window),
            "X-RateLimit-Remaining": str(max(0, per_window - self._used - 1)),
            "X-RateLimit-Reset": str(reset),
        }
        if self.limit_per_minute is not None and self._used >= per_window:
            headers["X-RateLimit-Remaining"] = "0"
            fault = error(429, "rate_limit_exceeded", "Exceeded rate limit of 10000 in 10_seconds").response
            fault.headers.update(headers)
            fault.headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return headers, fault
        self._used += 1
        return headers, None

    def _body(self, request: FakeRequest) -> dict:
        try:
            body = request.json()
        except ValueError:
            raise error(400, "parameter_invalid", "The request body is not valid JSON") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise error(400, "parameter_invalid", "The request body must be a JSON object")
        return body

    def _admin_of(self, body: dict) -> str:
        admin_id = body.get("admin_id")
        if admin_id is None or str(admin_id) not in self.admins:
            raise error(400, "parameter_invalid", "admin_id is required and must name an admin")
        return str(admin_id)

    # -- handlers ----------------------------------------------------------------------------

    def _h_me(self, request: FakeRequest) -> FakeResponse:
        admin = self.admins[self._actor or self.api_admin["id"]]
        return FakeResponse(
            200,
            {
                **copy.deepcopy(admin),
                "away_mode_enabled": False,
                "away_mode_reassign": False,
                "has_inbox_seat": True,
                "team_ids": [],
                "avatar": {"type": "avatar", "image_url": None},
                "email_verified": True,
                "app": {
                    "type": "app",
                    "id_code": self.workspace_id,
                    "name": "Sandbox",
                    "region": "US",
                    "timezone": "UTC",
                    "created_at": 1700000000,
                    "identity_verification": False,
                },
            },
        )

    def _h_ticket_types(self, request: FakeRequest) -> FakeResponse:
        data = [self._ticket_type_json(t, with_states=True) for t in self.ticket_types]
        return FakeResponse(200, {"type": "list", "data": data})

    def _h_ticket_states(self, request: FakeRequest) -> FakeResponse:
        data = []
        for state_id, state in self.ticket_states.items():
            item = {**self._ticket_state_json(state_id), "archived": state["archived"]}
            item["ticket_types"] = {"type": "list", "data": []}
            data.append(item)
        return FakeResponse(200, {"type": "list", "data": data})

    def _h_tags(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, {"type": "list", "data": [copy.deepcopy(t) for t in self.tags.values()]})

    def _h_tag_create(self, request: FakeRequest) -> FakeResponse:
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise error(400, "parameter_invalid", "name is required")
        if "id" in body:
            tag = self.tags.get(str(body["id"]))
            if tag is None:
                raise error(404, "tag_not_found", "Tag not found")
            tag["name"] = name
        else:
            tag = self.tag_named(name)
        return FakeResponse(200, {"type": "tag", "id": tag["id"], "name": tag["name"]})

    def _h_contact(self, request: FakeRequest) -> FakeResponse:
        contact = self.contacts.get(request.params["id"])
        if contact is None:
            raise error(404, "not_found", "User Not Found")
        return FakeResponse(200, copy.deepcopy(contact))

    def _h_company(self, request: FakeRequest) -> FakeResponse:
        company = self.companies.get(request.params["id"])
        if company is None:
            raise error(404, "company_not_found", "Company Not Found")
        return FakeResponse(200, copy.deepcopy(company))

    def _search(self, request: FakeRequest, kind: str) -> FakeResponse:
        body = self._body(request)
        if "query" not in body or not isinstance(body["query"], dict):
            raise error(400, "parameter_not_found", "query is required")
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise error(400, "parameter_invalid", "pagination must be an object")
        per_page = pagination.get("per_page", PAGE_DEFAULT)
        if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= PAGE_MAX:
            raise error(400, "parameter_invalid", f"per_page must be between 1 and {PAGE_MAX}")
        test = _predicate(body["query"], kind)
        candidates = [
            r for r in self.conversations.values() if (r["ticket"] is not None) == (kind == "tickets") and test(r, self)
        ]
        # Newest first, as the inbox lists them; clients may not rely on any order.
        candidates.sort(key=lambda r: (-r["updated_at"], -int(r["id"])))
        start = 0
        if pagination.get("starting_after"):
            cursor = _unb64(str(pagination["starting_after"]))
            start = int(cursor.get("offset", 0))
        page = candidates[start : start + per_page]
        total_pages = max(1, math.ceil(len(candidates) / per_page))
        pages: dict[str, Any] = {
            "type": "pages",
            "page": start // per_page + 1,
            "per_page": per_page,
            "total_pages": total_pages,
        }
        if start + per_page < len(candidates):
            pages["next"] = {"per_page": per_page, "starting_after": _b64({"offset": start + per_page})}
        if kind == "tickets":
            items = [self._ticket_json(r) for r in page]
            return FakeResponse(
                200, {"type": "ticket.list", "tickets": items, "total_count": len(candidates), "pages": pages}
            )
        items = [self._conversation_json(r, full=False) for r in page]
        return FakeResponse(
            200, {"type": "conversation.list", "conversations": items, "total_count": len(candidates), "pages": pages}
        )

    def _h_ticket_search(self, request: FakeRequest) -> FakeResponse:
        return self._search(request, "tickets")

    def _h_conversation_search(self, request: FakeRequest) -> FakeResponse:
        return self._search(request, "conversations")

    def _h_ticket(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, self._ticket_json(self._ticket_record(request.params["id"])))

    def _h_ticket_update(self, request: FakeRequest) -> FakeResponse:
        record = self._ticket_record(request.params["id"])
        body = self._body(request)
        admin = str(body["admin_id"]) if body.get("admin_id") is not None else self.api_admin["id"]
        if admin not in self.admins:
            raise error(400, "parameter_invalid", "admin_id must name an admin")
        ticket = record["ticket"]
        attributes = body.get("ticket_attributes")
        if attributes is not None:
            if not isinstance(attributes, dict):
                raise error(400, "parameter_invalid", "ticket_attributes must be an object")
            known = {a["name"]: a for a in self.ticket_types[ticket["type_id"]]["attributes"] if not a["archived"]}
            for name, value in attributes.items():
                if name not in known:
                    raise error(400, "parameter_invalid", f"Ticket attribute '{name}' does not exist")
                if known[name]["data_type"] == "string" and not isinstance(value, str):
                    raise error(400, "parameter_invalid", f"Ticket attribute '{name}' must be a string")
            changed = {k: v for k, v in attributes.items() if ticket["attributes"].get(k) != v}
            if changed:
                ticket["attributes"].update(changed)
                if TITLE in changed:
                    record["title"] = changed[TITLE]
                self._touch(record)
        state_id = body.get("ticket_state_id")
        if state_id is not None:
            if str(state_id) not in self.ticket_states:
                raise error(400, "parameter_invalid", "ticket_state_id does not name a ticket state")
            self._set_ticket_state(record, str(state_id), admin)
        if "open" in body:
            if not isinstance(body["open"], bool):
                raise error(400, "parameter_invalid", "open must be a boolean")
            if body["open"] != record["open"]:
                record["open"], record["state"] = body["open"], "open" if body["open"] else "closed"
                if body["open"] and self._category(record) == "resolved":
                    ticket["state_id"] = self._state_id("in_progress")
                self._touch(record)
        if body.get("assignee_id") is not None:
            assignee = str(body["assignee_id"])
            record["admin_assignee_id"] = None if assignee == "0" else assignee
            self._touch(record)
        return FakeResponse(200, self._ticket_json(record))

    def _reply(self, record: dict, body: dict) -> dict:
        if body.get("type") != "admin" or body.get("message_type") not in ("note", "comment"):
            raise error(400, "parameter_invalid", "this sandbox takes admin notes and comments")
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            raise error(400, "parameter_invalid", "body is required for notes and comments")
        author = self._author(self._admin_of(body))
        part = self._add_part(record, body["message_type"], text, author)
        if body["message_type"] == "comment" and record.get("ticket") is not None:
            pass  # a reply to the customer leaves the state as the agent set it
        return part

    def _h_ticket_reply(self, request: FakeRequest) -> FakeResponse:
        record = self._ticket_record(request.params["id"])
        part = self._reply(record, self._body(request))
        out = {k: copy.deepcopy(part[k]) for k in ("id", "part_type", "body", "created_at", "updated_at", "author")}
        return FakeResponse(200, {"type": "ticket_part", **out, "attachments": [], "redacted": False})

    def _h_tag_add(self, request: FakeRequest) -> FakeResponse:
        ticket_path = request.path.startswith("/tickets/")
        record = self._ticket_record(request.params["id"]) if ticket_path else self._record(request.params["id"])
        body = self._body(request)
        if body.get("id") is None:
            raise error(400, "parameter_invalid", "id (the tag's) is required")
        admin = self._admin_of(body)
        return FakeResponse(200, self._apply_tag(record, str(body["id"]), admin))

    def _h_tag_remove(self, request: FakeRequest) -> FakeResponse:
        ticket_path = request.path.startswith("/tickets/")
        record = self._ticket_record(request.params["id"]) if ticket_path else self._record(request.params["id"])
        admin = self._admin_of(self._body(request))
        tag_id = request.params["tag"]
        if tag_id not in self.tags or tag_id not in record["tag_ids"]:
            raise error(404, "tag_not_found", "Tag not found")
        record["tag_ids"].remove(tag_id)
        self._touch(record)
        return FakeResponse(
            200, {**self.tags[tag_id], "applied_at": None, "applied_by": {"type": "admin", "id": admin}}
        )

    def _h_conversation(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse(200, self._conversation_json(self._record(request.params["id"])))

    def _h_conversation_update(self, request: FakeRequest) -> FakeResponse:
        record = self._record(request.params["id"])
        body = self._body(request)
        custom = body.get("custom_attributes")
        if custom is not None:
            if not isinstance(custom, dict):
                raise error(400, "parameter_invalid", "custom_attributes must be an object")
            if any(record["custom_attributes"].get(k) != v for k, v in custom.items()):
                record["custom_attributes"].update(custom)
                self._touch(record)
        if isinstance(body.get("title"), str):
            record["title"] = body["title"]
            self._touch(record)
        return FakeResponse(200, self._conversation_json(record))

    def _h_conversation_reply(self, request: FakeRequest) -> FakeResponse:
        record = self._record(request.params["id"])
        self._reply(record, self._body(request))
        return FakeResponse(200, self._conversation_json(record))

    def _h_conversation_parts(self, request: FakeRequest) -> FakeResponse:
        record = self._record(request.params["id"])
        body = self._body(request)
        admin = self._admin_of(body)
        message = body.get("message_type")
        if message == "open":
            record["open"], record["state"], record["snoozed_until"] = True, "open", None
            self._add_part(record, "open", None, self._author(admin))
        elif message == "close":
            record["open"], record["state"] = False, "closed"
            self._add_part(record, "close", body.get("body"), self._author(admin))
        else:
            raise error(400, "parameter_invalid", "this sandbox takes message_type open or close")
        return FakeResponse(200, self._conversation_json(record))


# --- search queries ---------------------------------------------------------------------------

SEARCH_FIELDS = {
    "tickets": {"id", "created_at", "updated_at", "open", "state", "admin_assignee_id", "ticket_type_id"},
    "conversations": {"id", "created_at", "updated_at", "open", "state", "admin_assignee_id"},
}


def _predicate(query: dict, kind: str) -> Callable[[dict, IntercomFake], bool]:
    """The search query as a test on a stored record (400 for what Intercom refuses)."""
    if "field" in query:
        return _single(query, kind)
    operator = query.get("operator")
    value = query.get("value")
    if operator not in ("AND", "OR") or not isinstance(value, list) or not value or len(value) > 15:
        raise error(400, "query_invalid", "A compound query needs operator AND or OR and 1 to 15 filters")
    tests = [_predicate(q, kind) if isinstance(q, dict) else _bad_query() for q in value]
    if operator == "AND":
        return lambda r, f: all(t(r, f) for t in tests)
    return lambda r, f: any(t(r, f) for t in tests)


def _bad_query() -> Callable[[dict, IntercomFake], bool]:
    raise error(400, "query_invalid", "each filter must be an object")


def _single(query: dict, kind: str) -> Callable[[dict, IntercomFake], bool]:
    name, operator, value = query.get("field"), query.get("operator"), query.get("value")
    if name not in SEARCH_FIELDS[kind]:
        raise error(400, "query_invalid", f"{name!r} is not a searchable field of {kind}")

    def read(record: dict, fake: IntercomFake) -> Any:
        if name == "state" and kind == "tickets":
            return fake._category(record)
        if name == "ticket_type_id":
            return record["ticket"]["type_id"]
        return record.get(name)

    if name in ("created_at", "updated_at"):
        if operator not in ("=", "<", ">"):
            raise error(400, "query_invalid", f"{name} takes the operators =, < and >")
        try:
            bound = int(str(value))
        except (TypeError, ValueError):
            raise error(400, "query_invalid", f"{name} takes a Unix time") from None
        compare = {"=": lambda a: a == bound, "<": lambda a: a < bound, ">": lambda a: a > bound}[operator]
        return lambda r, f: compare(read(r, f))
    if operator == "=":
        return lambda r, f: str(read(r, f)).lower() == str(value).lower()
    if operator == "!=":
        return lambda r, f: str(read(r, f)).lower() != str(value).lower()
    if operator in ("IN", "NIN") and isinstance(value, list):
        wanted = {str(v).lower() for v in value}
        return lambda r, f: (str(read(r, f)).lower() in wanted) == (operator == "IN")
    raise error(400, "query_invalid", f"operator {operator!r} is not supported for {name}")


def text_of(body: str | None) -> str:
    """What a person reads of a part's HTML body (for tests and the demo)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", body or "")).strip()
