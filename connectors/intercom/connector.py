"""Intercom as a helpdesk: tickets (and, where the admin turns them on, conversations).

Requests follow Intercom's own OpenAPI description, version 2.15 (sent as
``Intercom-Version``). Choices worth knowing:

- **Records.** A ticket is a :class:`~syncd.records.Ticket` with its id as
  Intercom gives it (``id``, what the API takes; ``ticket_id``, the number the
  Inbox shows, is its key ``#n``). A conversation, when ``conversations =
  true``, is one too, its id written ``c<id>`` so that the two kinds never
  share an id. The customer is the ticket's first contact, the organisation
  that contact's company (its plan is the tier), the agent the admin
  assignee. Ticket attributes are the ticket's fields, keyed by attribute
  name (``_default_title_`` is the subject).
- **Statuses** (the canonical words of :data:`connectors.base.TICKET_STATUSES`)
  come from the ticket state's category: ``submitted`` is new (open when an
  admin is assigned), ``in_progress`` open (hold while snoozed),
  ``waiting_on_customer`` pending, ``resolved`` solved; a ticket closed
  (``open: false``) is solved, because Intercom reopens it on request
  (``open: true``): nothing in Intercom is "closed" in the contract's sense,
  a state that refuses every update. A conversation is open, hold while
  snoozed, solved when closed.
- **The feed** is ``POST /tickets/search`` (and ``/conversations/search``)
  on ``updated_at >`` an overlap (``overlap_seconds``) before the later of
  the newest change delivered and the start of the last complete poll
  (search trails writes), 150 a page. The description declares no sort
  order, so ``since`` moves only when the last page is read; until then the
  stored cursor keeps the old ``since`` and what it delivered. Times are
  whole seconds: each feed remembers the records it delivered inside the
  overlap, by a fingerprint (updated_at, state, open, part count), and
  leaves them out when they come back unchanged, so an idle poll costs one
  search request per feed and nothing more.
- **Tags and notes.** The 2.15 ticket object has no tags; a ticket is a
  conversation too (same id), and ``GET /conversations/{id}`` carries its tags
  and its parts. The feed reads it once for each new or changed record, and
  :meth:`comments` uses that answer when it follows at once (no second read).
  Contacts and companies are read once each and kept for the life of the
  connector.
- **Writes.** A ticket update is, in this order: attributes and state in one
  ``PUT /tickets/{id}``, tags one by one, and last the admin note
  (``POST /tickets/{id}/reply``, HTML, carrying the marker). The note goes
  last so that finding its marker means the whole write landed; everything
  before it is safe to send twice. Notes cannot be edited in Intercom: the
  parts of the handoff that change in place (linked-issue status, stage,
  what is still missing) are ticket attributes, never notes.
- **Follow-ups.** Zendesk makes a follow-up ticket when a closed ticket
  refuses updates. An Intercom ticket can always be reopened, so what
  stands in for it is the same ticket, reopened, with the follow-up's note
  (see :meth:`IntercomConnector.create_follow_up`).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Iterator, Literal
from urllib.parse import urlsplit

import structlog
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    ConnectorConfig,
    Helpdesk,
    Page,
    Rejected,
    WebhookSignature,
    WriteResult,
    find_markers,
    marker_token,
    read_secret,
)
from syncd.errors import ApiError, AuthError, ConfigError, Conflict, NotFound, PayloadError
from syncd.http import HttpClient, RateHeaders, RateRule, expect_dict, object_or_empty
from syncd.records import Comment, Customer, Organization, Ref, Ticket
from syncd.writes import FollowUpTicket, TicketUpdate

log = structlog.get_logger("syncd.connectors.intercom")

API_VERSION = "2.15"
PAGE_MAX = 150  # the most a search page returns
REGIONS = {
    "us": ("https://api.intercom.io", "https://app.intercom.com"),
    "eu": ("https://api.eu.intercom.io", "https://app.eu.intercom.com"),
    "au": ("https://api.au.intercom.io", "https://app.au.intercom.com"),
}
CONVERSATION_PREFIX = "c"
# Attribute data types a text value can be written to (the linked-issue status, the stage, a pasted key).
TEXT_TYPES = frozenset({"string"})
NOTE_PARTS = frozenset({"note", "note_and_reopen"})
TITLE = "_default_title_"
DESCRIPTION = "_default_description_"

# ticket state category -> canonical status
TICKET_STATES = {
    "submitted": "new",
    "in_progress": "open",
    "waiting_on_customer": "pending",
    "resolved": "solved",
}
# canonical status syncd may write -> the ticket state category it sets
WRITE_STATES = {"new": "submitted", "open": "in_progress", "pending": "waiting_on_customer", "solved": "resolved"}


class IntercomConfig(ConnectorConfig):
    """Settings for one Intercom workspace."""

    kind: Literal["intercom"] = "intercom"
    region: Literal["us", "eu", "au"] = Field(
        "us", description="Where the workspace is hosted: us, eu or au (sets url and app_url unless given)."
    )
    url: str = Field(description="API base URL; default from region (https://api.intercom.io for us).")
    app_url: str = Field("", description="Where agents open Intercom; default from region (https://app.intercom.com).")
    workspace_id: str = Field(
        min_length=1, description="The workspace's app id, as in https://app.intercom.com/a/inbox/<workspace_id>/."
    )
    token: SecretStr | None = Field(None, description="Access token of the app syncd uses.")
    token_file: str | None = Field(None, description="File holding the access token.")
    api_version: str = Field(API_VERSION, description="Intercom-Version header; syncd is written for 2.15.")
    status_attribute: str | None = Field(
        None, description="Ticket attribute (a text attribute, by name) syncd writes the linked issues' status to."
    )
    stage_attribute: str | None = Field(
        None, description="Ticket attribute ([stages] field) that shows the follow-up stage; syncd check checks it."
    )
    link_attribute: str | None = Field(None, description="Ticket attribute where agents may paste an issue key or URL.")
    conversations: bool = Field(False, description="Also follow conversations, not only tickets.")
    overlap_seconds: int = Field(60, ge=1, le=3600, description="How far each poll re-reads before its cursor.")
    backfill_days: int = Field(30, ge=0, le=3650, description="How far back the first poll starts.")
    page_size: int = Field(PAGE_MAX, ge=1, le=PAGE_MAX, description="Records per search page (at most 150).")

    @model_validator(mode="before")
    @classmethod
    def _region_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            region = data.get("region", "us")
            api, app = REGIONS.get(region, REGIONS["us"])
            data = dict(data)
            data.setdefault("url", api)
            if not data.get("app_url"):
                data["app_url"] = app
        return data

    @model_validator(mode="after")
    def _check_credentials(self) -> "IntercomConfig":
        if self.token_file is not None:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    content = fh.read().strip()
            except OSError as exc:
                raise ValueError(
                    f"token_file {self.token_file!r} cannot be read ({exc.strerror or exc}): "
                    "check the path and that syncd's user may read it"
                ) from None
            if not content:
                raise ValueError(f"token_file {self.token_file!r} is empty: put the access token in it")
        if self.token is None and self.token_file is None:
            raise ValueError("no credentials: set token (env SYNCD_CONNECTORS__<NAME>__TOKEN) or token_file")
        if not re.match(r"^https?://[^\s/?#]+$", self.app_url.rstrip("/")):
            raise ValueError("app_url must be an http(s) URL such as https://app.intercom.com")
        return self

    def bearer(self) -> str:
        token = read_secret(self.token, self.token_file)
        assert token is not None  # guaranteed by the validator
        return token.get_secret_value()


@dataclass
class _Feed:
    """One search feed's position: ``since`` (Unix seconds) and what it delivered
    inside the overlap, id -> fingerprint."""

    since: int
    seen: dict[str, str] = field(default_factory=dict)
    checked: int | None = None  # when the last complete poll of this feed began (the app's clock)

    def bound(self, overlap: int) -> int:
        """The ``updated_at >`` bound of the next search.

        A change not yet visible to the last complete search was made less than
        ``overlap`` seconds before it (search trails writes by less than that), so
        the search re-reads from ``overlap`` before the later of ``since`` and
        that search's start: a burst of changes is read at most once more."""
        return max(0, max(self.since, self.checked or self.since) - overlap)

    def dump(self) -> dict[str, Any]:
        return {"since": self.since, "seen": self.seen, "checked": self.checked}


class IntercomConnector(Helpdesk):
    kind = "intercom"
    display_name = "Intercom"
    # Intercom signs each webhook with the app's client secret: "sha1=" and the hex HMAC-SHA1 of the body.
    webhook = WebhookSignature("X-Hub-Signature", digest="sha1", prefix="sha1=")
    fake = "connectors.intercom.fake:IntercomFake"
    config_model = IntercomConfig
    config: IntercomConfig
    status_field = "status_attribute"
    # Admin notes are HTML: outside text is escaped for HTML (mappings.escaping).
    text_format = "html"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._admin_id: str | None = None
        self._contacts: dict[str, dict] = {}
        self._companies: dict[str, dict] = {}
        self._tags: dict[str, str] | None = None  # name -> id
        self._states: list[dict] | None = None
        self._parts: dict[str, tuple[int, list[Comment]]] = {}  # record id -> (updated_at, comments) from the feed

    def make_http(self) -> HttpClient:
        return HttpClient(
            self.name,
            self.config.url,
            headers={
                "Authorization": f"Bearer {self.config.bearer()}",
                "Accept": "application/json",
                "Intercom-Version": self.config.api_version,
            },
            # X-RateLimit-Reset is a Unix time; a 429 when the window is spent.
            rate_headers=RateHeaders(
                remaining="x-ratelimit-remaining", limit="x-ratelimit-limit", reset="x-ratelimit-reset"
            ),
            rate_rule=RateRule(statuses=frozenset({429})),
            **self.http_options(),
        )

    # -- identity ----------------------------------------------------------------

    def check(self) -> str:
        me = self._get("/me", "GET /me")
        if me.get("id") is None:
            raise AuthError(self.name, "Intercom answered without an admin: check the access token")
        self._admin_id = str(me["id"])
        who = f"{me.get('name') or '?'} <{me.get('email') or '?'}> (admin {self._admin_id})"
        app = object_or_empty(me.get("app"))
        workspace = app.get("id_code")
        if isinstance(workspace, str) and workspace and workspace != self.config.workspace_id:
            raise ConfigError(
                [
                    f"connector {self.name}: workspace_id is {self.config.workspace_id!r} but the token "
                    f"belongs to workspace {workspace!r}; set workspace_id = {workspace!r}"
                ]
            )
        problems = self._check_attributes()
        if problems:
            raise ConfigError([f"connector {self.name}: {p}" for p in problems])
        return who

    def _check_attributes(self) -> list[str]:
        """The attributes named in config exist on a ticket type and take text."""
        named = {
            key: value
            for key, value in (
                ("status_attribute", self.config.status_attribute),
                ("stage_attribute", self.config.stage_attribute),
                ("link_attribute", self.config.link_attribute),
            )
            if value
        }
        if not named:
            return []
        body = self._get("/ticket_types", "GET /ticket_types")
        found: dict[str, set[str]] = {}
        for ticket_type in body.get("data") or []:
            if not isinstance(ticket_type, dict) or ticket_type.get("archived"):
                continue
            attributes = object_or_empty(ticket_type.get("ticket_type_attributes")).get("ticket_type_attributes")
            for attribute in attributes or []:
                if isinstance(attribute, dict) and not attribute.get("archived") and attribute.get("name"):
                    found.setdefault(str(attribute["name"]), set()).add(str(attribute.get("data_type")))
        problems = []
        for key, name in named.items():
            if name not in found:
                problems.append(
                    f"{key} {name!r} is not an attribute of any ticket type; create it "
                    "(Settings > Tickets > Ticket types) or correct the name"
                )
            elif not found[name] & TEXT_TYPES:
                problems.append(
                    f"{key} {name!r} is a {'/'.join(sorted(found[name]))} attribute; syncd writes text there: "
                    "use a text attribute"
                )
        return problems

    def admin_id(self) -> str:
        if self._admin_id is None:
            me = self._get("/me", "GET /me")
            if me.get("id") is None:
                raise AuthError(self.name, "Intercom answered without an admin: check the access token")
            self._admin_id = str(me["id"])
        return self._admin_id

    def ticket_url(self, ticket_id: str) -> str:
        _, number = self._split(ticket_id)
        return f"{self.config.app_url.rstrip('/')}/a/inbox/{self.config.workspace_id}/inbox/conversation/{number}"

    def ticket_url_pattern(self) -> str:
        host = re.escape(urlsplit(self.config.app_url).netloc)
        workspace = re.escape(self.config.workspace_id)
        return rf"https?://{host}/a/(?:inbox|apps)/{workspace}/(?:[\w-]+/)*?conversation/(?P<id>\d+)"

    def link_fields(self) -> tuple[str, ...]:
        return (self.config.link_attribute,) if self.config.link_attribute else ()

    # -- the feed -----------------------------------------------------------------

    def poll(self, cursor: str | None) -> Iterator[Page]:
        feeds = self._parse_cursor(cursor)
        kinds = ["tickets", "conversations"] if self.config.conversations else ["tickets"]
        for index, kind in enumerate(kinds):
            last_kind = index == len(kinds) - 1
            for page, done in self._poll_feed(kind, feeds):
                yield Page(
                    records=page.records,
                    cursor=json.dumps({k: v.dump() for k, v in feeds.items()}, sort_keys=True),
                    done=done and last_kind,
                    rejected=page.rejected,
                )

    def _poll_feed(self, kind: str, feeds: dict[str, _Feed]) -> Iterator[tuple[Page, bool]]:
        feed = feeds[kind]
        start = feed.since
        began = int(self.clock().timestamp())
        bound = feed.bound(self.config.overlap_seconds)
        delivered: dict[str, tuple[int, str]] = {}  # id -> (updated_at, fingerprint), this poll
        newest = start
        starting_after: str | None = None
        path = f"/{kind}/search"
        # A ticket is a conversation too; where the conversation search answers with one, it is
        # left to the tickets feed (read just before, over the same window).
        tickets = set(feeds["tickets"].seen) if kind == "conversations" else set()
        while True:
            pagination: dict[str, Any] = {"per_page": self.config.page_size}
            if starting_after:
                pagination["starting_after"] = starting_after
            query = {"field": "updated_at", "operator": ">", "value": bound}
            self._parts.clear()  # what the last page read was for that page's records only
            body = self.http.request_json(
                "POST", path, json={"query": query, "pagination": pagination}, idempotent=True, endpoint=f"POST {path}"
            )
            body = expect_dict(self.name, body, f"POST {path}")
            raw_records = body.get(kind)
            if not isinstance(raw_records, list):
                raise PayloadError(
                    self.name,
                    f"{kind} search: the response has no '{kind}' list (keys: {', '.join(sorted(body)) or 'none'})",
                    payload=body,
                )
            records, rejected = [], []
            for raw in raw_records:
                rid = self._raw_id(kind, raw)
                if rid is not None and rid.removeprefix(CONVERSATION_PREFIX) in tickets:
                    continue
                fingerprint = _fingerprint(raw)
                updated = _unix(raw.get("updated_at")) if isinstance(raw, dict) else None
                if rid is not None and fingerprint is not None:
                    if feed.seen.get(rid) == fingerprint or (rid in delivered and delivered[rid][1] == fingerprint):
                        continue  # delivered already, unchanged: the overlap's repeat
                try:
                    records.append(self._read_record(kind, raw))
                except PayloadError as exc:
                    rejected.append(Rejected(exc.record_id or rid, str(exc), raw))
                    continue
                except NotFound:
                    log.info("deleted since the search answered, skipped", connector=self.name, record=rid)
                    continue
                if rid is not None and fingerprint is not None and updated is not None:
                    delivered[rid] = (updated, fingerprint)
                    newest = max(newest, updated)
            nxt = object_or_empty(object_or_empty(body.get("pages")).get("next")).get("starting_after")
            more = isinstance(nxt, str) and bool(nxt) and nxt != starting_after and bool(raw_records)
            if more:
                # since stays until the last page: the order of the results is not described.
                feed.seen = {**feed.seen, **{i: f for i, (_, f) in delivered.items()}}
                yield Page(records=records, cursor=None, done=False, rejected=rejected), False
                starting_after = nxt
                continue
            merged = {**feed.seen, **{i: f for i, (_, f) in delivered.items()}}
            feed.since, feed.checked = newest, began
            keep_from = feed.bound(self.config.overlap_seconds)
            feed.seen = {
                i: f for i, f in merged.items() if (delivered.get(i, (None,))[0] or _fingerprint_time(f)) >= keep_from
            }
            yield Page(records=records, cursor=None, done=True, rejected=rejected), True
            return

    def _parse_cursor(self, cursor: str | None) -> dict[str, _Feed]:
        if cursor is None:
            start = int(self.clock().timestamp()) - self.config.backfill_days * 86400
            return {"tickets": _Feed(start), "conversations": _Feed(start)}
        try:
            value = json.loads(cursor)
            feeds = {
                kind: _Feed(
                    int(value[kind]["since"]),
                    {str(k): str(v) for k, v in value[kind]["seen"].items()},
                    int(value[kind]["checked"]) if value[kind].get("checked") is not None else None,
                )
                for kind in ("tickets", "conversations")
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                [
                    f"connector {self.name}: stored cursor {cursor[:60]!r} is not an Intercom cursor; "
                    "reset this connector's cursor to poll from backfill_days"
                ]
            ) from None
        return feeds

    def _raw_id(self, kind: str, raw: Any) -> str | None:
        rid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or not str(rid).isdigit():
            return None
        return f"{CONVERSATION_PREFIX}{rid}" if kind == "conversations" else str(rid)

    def _read_record(self, kind: str, raw: Any) -> Ticket:
        """A search result as a Ticket: its conversation read for tags and parts."""
        rid = self._raw_id(kind, raw)
        if rid is None:
            raise PayloadError(self.name, f"{kind[:-1]} without a numeric id", payload=raw)
        _validate(self.name, kind, rid, raw)
        conversation = self._conversation(rid)
        if kind == "tickets":
            return self._ticket(raw, conversation)
        return self._conversation_ticket(conversation)

    # -- reads ----------------------------------------------------------------------

    def get_ticket(self, ticket_id: str) -> Ticket:
        kind, number = self._split(ticket_id)
        if kind == "conversations":
            return self._conversation_ticket(self._conversation(ticket_id, keep=False))
        raw = self._get(f"/tickets/{number}", "GET /tickets/{ticket_id}", record_id=ticket_id)
        _validate(self.name, "tickets", ticket_id, raw)
        return self._ticket(raw, self._conversation(ticket_id, keep=False))

    def comments(self, ticket_id: str, after: str | None = None) -> list[Comment]:
        cached = self._parts.pop(ticket_id, None)
        comments = cached[1] if cached is not None else self._comments(self._conversation(ticket_id, keep=False))
        if after is None:
            return comments
        try:
            floor = int(after)
        except ValueError:
            return comments
        return [c for c in comments if c.id.isdigit() and int(c.id) > floor]

    def find_marker(self, ticket_id: str, key: str) -> bool:
        conversation = self._conversation(ticket_id, keep=False)
        return any(key in c.markers for c in self._comments(conversation))

    def _conversation(self, ticket_id: str, *, keep: bool = True) -> dict:
        _, number = self._split(ticket_id)
        raw = self._get(f"/conversations/{number}", "GET /conversations/{conversation_id}", record_id=ticket_id)
        if keep:
            self._parts[ticket_id] = (_unix(raw.get("updated_at")) or 0, self._comments(raw))
        return raw

    def _comments(self, conversation: dict) -> list[Comment]:
        out: list[Comment] = []
        source = object_or_empty(conversation.get("source"))
        if source.get("body") and str(source.get("id") or "").isdigit():
            created = _unix(conversation.get("created_at"))
            author = object_or_empty(source.get("author"))
            if created is not None:
                out.append(
                    Comment(
                        id=str(source["id"]),
                        body=html_text(str(source["body"])),
                        public=True,
                        author_id=_str_id(author.get("id")),
                        created_at=datetime.fromtimestamp(created, timezone.utc),
                        markers=find_markers(str(source["body"])),
                    )
                )
        parts = object_or_empty(conversation.get("conversation_parts")).get("conversation_parts")
        for part in parts if isinstance(parts, list) else []:
            comment = self._part(part)
            if comment is not None:
                out.append(comment)
        out.sort(key=lambda c: (c.created_at, int(c.id) if c.id.isdigit() else 0))
        return out

    def _part(self, part: Any) -> Comment | None:
        if not isinstance(part, dict):
            return None
        body, pid, created = part.get("body"), part.get("id"), _unix(part.get("created_at"))
        if not isinstance(body, str) or not body.strip() or not str(pid or "").isdigit() or created is None:
            return None
        author = object_or_empty(part.get("author"))
        return Comment(
            id=str(pid),
            body=html_text(body),
            public=part.get("part_type") not in NOTE_PARTS,
            author_id=_str_id(author.get("id")),
            created_at=datetime.fromtimestamp(created, timezone.utc),
            markers=find_markers(body),
            author_name=str(author.get("name") or "") or None,
        )

    # -- writes ------------------------------------------------------------------------

    def update_ticket(
        self, ticket_id: str, update: TicketUpdate, key: str, current: Ticket | None = None
    ) -> WriteResult:
        """Attributes and state, then tags, then the note (which carries the marker)."""
        kind, number = self._split(ticket_id)
        updated_at: int | None = None
        status = update.status
        if status and update.status_from:
            known = current if current is not None else self.get_ticket(ticket_id)
            if known.status not in update.status_from or known.status == status:
                status = None
        if kind == "tickets":
            body: dict[str, Any] = {}
            if update.fields:
                body["ticket_attributes"] = {str(k): v for k, v in update.fields.items()}
            if status:
                body.update(self._state_change(ticket_id, status))
            if body:
                body["admin_id"] = int(self.admin_id()) if self.admin_id().isdigit() else self.admin_id()
                answer = self._write("PUT", f"/tickets/{number}", body, "PUT /tickets/{ticket_id}", ticket_id)
                updated_at = _unix(answer.get("updated_at")) or updated_at
        else:
            if update.fields:
                self._write(
                    "PUT",
                    f"/conversations/{number}",
                    {"custom_attributes": {str(k): v for k, v in update.fields.items()}},
                    "PUT /conversations/{conversation_id}",
                    ticket_id,
                )
            if status:
                self._conversation_state(ticket_id, status)
        tags_known = set(current.tags) if current is not None else None
        removing = [t for t in dict.fromkeys(update.remove_tags) if t not in update.add_tags]
        if tags_known is None and len(removing) > 1:
            # Tags are removed one request each, and a tag the ticket does not carry costs one
            # too: one read of the ticket's tags (its conversation) is cheaper than several.
            tags_known = set(_tags(self._conversation(ticket_id, keep=False)))
        for tag in dict.fromkeys(update.add_tags):
            if tags_known is not None and tag in tags_known:
                continue
            self._tag(ticket_id, tag)
        for tag in removing:
            if tags_known is not None and tag not in tags_known:
                continue
            self._untag(ticket_id, tag)
        if update.note:
            part = self._note(ticket_id, update.note, key)
            updated_at = _unix(part.get("updated_at")) or _unix(part.get("created_at")) or updated_at
        when = datetime.fromtimestamp(updated_at, timezone.utc) if updated_at else None
        return WriteResult(updated_at=when, id=ticket_id)

    def _note(self, ticket_id: str, note: str, key: str) -> dict:
        kind, number = self._split(ticket_id)
        body = {
            "message_type": "note",
            "type": "admin",
            "admin_id": self.admin_id(),
            "body": note_html(note, key),
        }
        if kind == "tickets":
            return self._write("POST", f"/tickets/{number}/reply", body, "POST /tickets/{ticket_id}/reply", ticket_id)
        return self._write(
            "POST", f"/conversations/{number}/reply", body, "POST /conversations/{conversation_id}/reply", ticket_id
        )

    def _state_change(self, ticket_id: str, status: str) -> dict[str, Any]:
        """The PUT body's part that sets a canonical status on a ticket."""
        category = WRITE_STATES.get(status)
        if category is None:
            raise Conflict(self.name, f"ticket {ticket_id}: Intercom has no ticket state for status {status!r}")
        state = self._state_for(category)
        change: dict[str, Any] = {"open": category != "resolved"}
        if state is not None:
            change["ticket_state_id"] = state
        return change

    def _state_for(self, category: str) -> str | None:
        if self._states is None:
            body = self._get("/ticket_states", "GET /ticket_states")
            self._states = [s for s in body.get("data") or [] if isinstance(s, dict) and not s.get("archived")]
        return next((str(s["id"]) for s in self._states if s.get("category") == category and s.get("id")), None)

    def _conversation_state(self, ticket_id: str, status: str) -> None:
        _, number = self._split(ticket_id)
        message = {"open": "open", "new": "open", "pending": "open", "solved": "close"}.get(status)
        if message is None:
            raise Conflict(self.name, f"conversation {ticket_id}: cannot set status {status!r}")
        body: dict[str, Any] = {"message_type": message, "admin_id": self.admin_id()}
        if message == "close":
            body["type"] = "admin"
        self._write(
            "POST", f"/conversations/{number}/parts", body, "POST /conversations/{conversation_id}/parts", ticket_id
        )

    def _tag_id(self, name: str) -> str:
        if self._tags is None:
            body = self._get("/tags", "GET /tags")
            self._tags = {
                str(t["name"]): str(t["id"]) for t in body.get("data") or [] if isinstance(t, dict) and t.get("id")
            }
        if name not in self._tags:
            created = self._write("POST", "/tags", {"name": name}, "POST /tags", None)
            if created.get("id") is None:
                raise PayloadError(self.name, f"tag {name!r}: the answer names no tag id", payload=created)
            self._tags[name] = str(created["id"])
        return self._tags[name]

    def _tag(self, ticket_id: str, name: str) -> None:
        kind, number = self._split(ticket_id)
        body = {"id": self._tag_id(name), "admin_id": self.admin_id()}
        if kind == "tickets":
            self._write("POST", f"/tickets/{number}/tags", body, "POST /tickets/{ticket_id}/tags", ticket_id)
        else:
            self._write(
                "POST", f"/conversations/{number}/tags", body, "POST /conversations/{conversation_id}/tags", ticket_id
            )

    def _untag(self, ticket_id: str, name: str) -> None:
        kind, number = self._split(ticket_id)
        if self._tags is not None and name not in self._tags:
            self._tags = None  # read again: the tag may be new since
        tag = self._tag_id_if_known(name)
        if tag is None:
            return  # no such tag in the workspace: nothing to remove
        path = f"/tickets/{number}/tags/{tag}" if kind == "tickets" else f"/conversations/{number}/tags/{tag}"
        endpoint = (
            "DELETE /tickets/{ticket_id}/tags/{tag_id}"
            if kind == "tickets"
            else "DELETE /conversations/{conversation_id}/tags/{tag_id}"
        )
        try:
            self.http.request_json(
                "DELETE", path, json={"admin_id": self.admin_id()}, idempotent=True, endpoint=endpoint
            )
        except NotFound:
            pass  # the tag was not on it: removed already

    def _tag_id_if_known(self, name: str) -> str | None:
        if self._tags is None:
            body = self._get("/tags", "GET /tags")
            self._tags = {
                str(t["name"]): str(t["id"]) for t in body.get("data") or [] if isinstance(t, dict) and t.get("id")
            }
        return self._tags.get(name)

    def _write(self, method: str, path: str, body: dict, endpoint: str, ticket_id: str | None) -> dict:
        try:
            answer = self.http.request_json(method, path, json=body, endpoint=endpoint)
        except Conflict as exc:
            what = f"ticket {ticket_id}" if ticket_id else "tags"
            raise Conflict(self.name, f"{what}: Intercom refused the update ({exc})", status=exc.status) from None
        return answer if isinstance(answer, dict) else {}

    # -- follow-ups -----------------------------------------------------------------

    def create_follow_up(self, source_id: str, follow_up: FollowUpTicket, key: str) -> WriteResult:
        """What stands in for Zendesk's follow-up ticket: the same ticket, reopened.

        Intercom reopens any ticket or conversation it has (``open: true``),
        so no new ticket is made: the source is reopened (its state set to
        in progress), given the follow-up's tags, and its note added with
        the marker, which :meth:`find_follow_up` looks for. The answer's id
        is the source's own."""
        update = TicketUpdate(note=follow_up.note, add_tags=follow_up.tags, status="open")
        return self.update_ticket(source_id, update, key)

    def find_follow_up(self, source_id: str, key: str) -> str | None:
        return source_id if self.find_marker(source_id, key) else None

    # -- normalisation ----------------------------------------------------------------

    def _ticket(self, raw: dict, conversation: dict) -> Ticket:
        rid = str(raw["id"])
        attributes = object_or_empty(raw.get("ticket_attributes"))
        state = object_or_empty(raw.get("ticket_state"))
        category = state.get("category")
        status = TICKET_STATES.get(category) if isinstance(category, str) else None
        if status is None:
            raise PayloadError(
                self.name, f"ticket {rid}: ticket_state category {category!r} is unknown", record_id=rid, payload=raw
            )
        assignee = _str_id(raw.get("admin_assignee_id"))
        if assignee == "0":
            assignee = None
        if raw.get("open") is False:
            status = "solved"
        elif status == "new" and assignee:
            status = "open"
        elif status == "open" and raw.get("snoozed_until"):
            status = "hold"
        contacts = object_or_empty(raw.get("contacts")).get("contacts")
        contact_id = next((str(c["id"]) for c in contacts or [] if isinstance(c, dict) and c.get("id")), None)
        customer, organization = self._customer(contact_id, conversation)
        ticket_type = object_or_empty(raw.get("ticket_type"))
        fields = {str(k): v for k, v in attributes.items()}
        return Ticket(
            ref=Ref(self.name, rid),
            key=f"#{raw.get('ticket_id') or rid}",
            url=self.ticket_url(rid),
            subject=_text(attributes.get(TITLE)),
            status=status,
            updated_at=datetime.fromtimestamp(_unix(raw["updated_at"]) or 0, timezone.utc),
            created_at=_time(raw.get("created_at")),
            priority=_priority(conversation),
            requester=customer,
            organization=organization,
            assignee_id=assignee,
            assignee_name=self._admin_name(conversation, assignee),
            group_id=_none_if_zero(_str_id(raw.get("team_assignee_id"))),
            tags=_tags(conversation),
            fields=fields,
            description=html_text(_text(attributes.get(DESCRIPTION))),
            form_id=_str_id(ticket_type.get("id")),
        )

    def _conversation_ticket(self, raw: dict) -> Ticket:
        number = raw.get("id")
        rid = f"{CONVERSATION_PREFIX}{number}"
        _validate(self.name, "conversations", rid, raw)
        state = raw.get("state")
        status = {"open": "open", "snoozed": "hold", "closed": "solved"}.get(state if isinstance(state, str) else "")
        if status is None:
            status = "open" if raw.get("open") is not False else "solved"
        assignee = _none_if_zero(_str_id(raw.get("admin_assignee_id")))
        contacts = object_or_empty(raw.get("contacts")).get("contacts")
        contact_id = next((str(c["id"]) for c in contacts or [] if isinstance(c, dict) and c.get("id")), None)
        customer, organization = self._customer(contact_id, raw)
        source = object_or_empty(raw.get("source"))
        return Ticket(
            ref=Ref(self.name, rid),
            key=f"conversation {number}",
            url=self.ticket_url(rid),
            subject=_text(raw.get("title")) or html_text(_text(source.get("subject"))),
            status=status,
            updated_at=datetime.fromtimestamp(_unix(raw["updated_at"]) or 0, timezone.utc),
            created_at=_time(raw.get("created_at")),
            priority=_priority(raw),
            requester=customer,
            organization=organization,
            assignee_id=assignee,
            assignee_name=self._admin_name(raw, assignee),
            group_id=_none_if_zero(_str_id(raw.get("team_assignee_id"))),
            tags=_tags(raw),
            fields={str(k): v for k, v in object_or_empty(raw.get("custom_attributes")).items()},
            description=html_text(_text(source.get("body"))),
        )

    def _customer(self, contact_id: str | None, conversation: dict) -> tuple[Customer | None, Organization | None]:
        if contact_id is None:
            return None, None
        contact = self._contact(contact_id)
        company = object_or_empty(conversation.get("company"))
        company_id = _str_id(company.get("id"))
        if company_id is None:
            companies = object_or_empty(contact.get("companies")).get("data")
            company_id = next((str(c["id"]) for c in companies or [] if isinstance(c, dict) and c.get("id")), None)
        organization = None
        if company_id is not None:
            details = company if company.get("name") else self._company(company_id)
            plan = object_or_empty(details.get("plan")).get("name")
            organization = Organization(
                id=company_id, name=_text(details.get("name")), tier=plan if isinstance(plan, str) and plan else None
            )
        customer = Customer(
            id=contact_id,
            name=_text(contact.get("name")),
            email=contact.get("email") if isinstance(contact.get("email"), str) else None,
            organization_id=company_id,
        )
        return customer, organization

    def _contact(self, contact_id: str) -> dict:
        if contact_id not in self._contacts:
            try:
                self._contacts[contact_id] = self._get(f"/contacts/{contact_id}", "GET /contacts/{contact_id}")
            except NotFound:
                self._contacts[contact_id] = {}
        return self._contacts[contact_id]

    def _company(self, company_id: str) -> dict:
        if company_id not in self._companies:
            try:
                self._companies[company_id] = self._get(f"/companies/{company_id}", "GET /companies/{company_id}")
            except NotFound:
                self._companies[company_id] = {}
        return self._companies[company_id]

    def _admin_name(self, conversation: dict, admin_id: str | None) -> str | None:
        """The assignee's name, where a part of the conversation was written by them."""
        if admin_id is None:
            return None
        parts = object_or_empty(conversation.get("conversation_parts")).get("conversation_parts")
        for part in parts if isinstance(parts, list) else []:
            author = object_or_empty(object_or_empty(part).get("author"))
            if author.get("type") == "admin" and str(author.get("id")) == admin_id:
                name = author.get("name")
                if isinstance(name, str) and name.strip():
                    return name
        return None

    # -- helpers -----------------------------------------------------------------------

    def _split(self, ticket_id: str) -> tuple[str, str]:
        text = str(ticket_id).strip()
        if text.startswith(CONVERSATION_PREFIX) and text[1:].isdigit():
            return "conversations", text[1:]
        if text.isdigit():
            return "tickets", text
        raise NotFound(self.name, f"{ticket_id!r} is not an Intercom ticket id (digits, or c and digits)", status=404)

    def _get(self, path: str, endpoint: str, *, record_id: str | None = None) -> dict:
        try:
            body = self.http.request_json("GET", path, endpoint=endpoint)
        except ApiError:
            raise
        return expect_dict(self.name, body, endpoint, record_id=record_id)


# -- pure helpers ---------------------------------------------------------------------------


class _TextOf(HTMLParser):
    """An HTML body as the text a person reads, link targets kept (issue URLs live there)."""

    BREAKS = frozenset({"p", "br", "div", "li", "ul", "ol", "pre", "blockquote", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.out.append("\n")
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.startswith(("http://", "https://")):
                self.out.append(f" {href} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def html_text(body: str) -> str:
    """Plain text of an Intercom HTML body."""
    if "<" not in body and "&" not in body:
        return body
    parser = _TextOf()
    parser.feed(body)
    parser.close()
    text = "".join(parser.out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def note_html(note: str, key: str) -> str:
    """A note's text (outside values already escaped for HTML) as Intercom note HTML, with its marker."""
    paragraphs = [p for p in note.split("\n\n") if p.strip()]
    rendered = "".join("<p>" + "<br>".join(p.split("\n")) + "</p>" for p in paragraphs)
    return f"{rendered}<p>[{html.escape(marker_token(key))}]</p>"


def _fingerprint(raw: Any) -> str | None:
    """What tells a record's repeat from a change within the same second."""
    if not isinstance(raw, dict):
        return None
    updated = _unix(raw.get("updated_at"))
    if updated is None:
        return None
    state = object_or_empty(raw.get("ticket_state")).get("id") or raw.get("state")
    parts = object_or_empty(raw.get("ticket_parts")).get("total_count")
    if parts is None:
        parts = object_or_empty(raw.get("statistics")).get("count_conversation_parts")
    return f"{updated}|{state}|{raw.get('open')}|{parts}"


def _fingerprint_time(fingerprint: str) -> int:
    try:
        return int(fingerprint.split("|", 1)[0])
    except ValueError:
        return 0


def _validate(connector: str, kind: str, rid: str, raw: Any) -> None:
    """The fields syncd reads have the types the description gives them; PayloadError if not."""

    def bad(what: str) -> PayloadError:
        return PayloadError(connector, f"{kind[:-1]} {rid}: {what}", record_id=rid, payload=raw)

    if not isinstance(raw, dict):
        raise bad("expected an object")
    for key in ("updated_at", "created_at"):
        if key == "updated_at" or raw.get(key) is not None:
            if _unix(raw.get(key)) is None:
                raise bad(f"{key} is {raw.get(key)!r}, expected a Unix time")
    if kind == "tickets":
        for key in ("ticket_attributes", "ticket_state", "contacts"):
            if not isinstance(raw.get(key), dict):
                raise bad(f"{key} is {type(raw.get(key)).__name__}, expected an object")
    for key in ("admin_assignee_id", "team_assignee_id"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise bad(f"{key} is {type(value).__name__}, expected an id")


def _unix(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 32503680000:
        return None
    return value


def _time(value: Any) -> datetime | None:
    seconds = _unix(value)
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds is not None else None


def _str_id(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _none_if_zero(value: str | None) -> str | None:
    return None if value in (None, "", "0") else value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _tags(conversation: dict) -> tuple[str, ...]:
    tags = object_or_empty(conversation.get("tags")).get("tags")
    return tuple(str(t["name"]) for t in tags or [] if isinstance(t, dict) and isinstance(t.get("name"), str))


def _priority(conversation: dict) -> str | None:
    return "high" if conversation.get("priority") == "priority" else None
