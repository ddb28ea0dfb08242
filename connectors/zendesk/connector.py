"""Zendesk Support as a helpdesk: incremental ticket feed, comments, write-back.

Requests follow the official description's paths (no ``.json`` suffix).
Choices worth knowing:

- The feed is the cursor-based incremental ticket export with users and
  organisations sideloaded, so a page of changes costs one request. The
  stored cursor is JSON, ``{"start_time": unix}`` before the first page
  and ``{"cursor": after_cursor}`` after, so a first run and a resume are
  told apart; an ``"events"`` key beside it holds what the ticket events
  export was read through (below).
- The new comments of a page of changed tickets come from the time-based
  incremental ticket events export with ``include=comment_events``
  (:meth:`ZendeskConnector.page_comments`): one request covers every
  ticket of the page whose change falls in its window, instead of one
  comments read per ticket. The pages of one poll share one window of that
  stream: it is read forward once, from the earliest comment the first page
  may lack, each page takes the comments already read and the window reads
  on only past what it covers (before the poll's last page, also for the
  pages to come); it ends with the poll. Comments of tickets no page asked
  about yet are kept up to ``EVENTS_HELD_MAX`` (and ``EVENTS_HELD_CHARS`` of
  text), then the oldest are let go
  (a later ticket whose ``after`` shows them read still needs no read of its
  own). The export's pages overlap by a second (a page's ``end_time`` is the
  next ``start_time``), so comments are de-duplicated by id; the window
  counts as read through the second before the last ``end_time``, or through
  it where the stream ended more than the export's left-out minute ago.
- What the window read whole goes into each page's stored cursor as a mark
  (:class:`_EventsMark`): from when through when every comment was handed to
  a committed page, and the tickets it cannot speak for. The next poll
  starts a ticket's comments at the mark's end instead of at its last stored
  change, so the cycle after syncd's writes reads the stream from where the
  writes began, not from the tickets' older changes. The feed's own horizon
  would not be a safe start (see :class:`_EventsMark`).
- A ticket the window does not reach cheaply (its last stored change more
  than ``EVENTS_REACH`` before the others and before the window, a stream
  that stops moving, a second holding a full page of events, or more events
  pages than the reads they would save) is read the old way, one comments
  read a ticket.
- Comment pages are requested by cursor (``page[after]``) on our own base
  URL rather than by following ``links.next``, which names whatever host
  Zendesk thinks it is (recordings show another subdomain there).
- A single-ticket write is one PUT, except when it must know the ticket as
  it stands: a conditional status (``status_from``) or a tag change. Then it
  reads the ticket first and writes with ``safe_update``/``updated_stamp``,
  so the tag list it sends cannot clobber a concurrent change (Zendesk
  answers 409 and the read-modify-write is retried). Update Ticket has no
  add/remove-tags property in the description; ``additional_tags`` and
  ``remove_tags`` are documented for Update Many only, which is what the
  bulk write uses.
- A follow-up of a closed ticket (which Zendesk will not reopen or update)
  is a new ticket created with ``via_followup_source_id``; its marker is its
  ``external_id``, found again with List Tickets' ``external_id`` filter
  (see :meth:`ZendeskConnector.find_follow_up` for why that is reliable).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Literal
from urllib.parse import urlsplit

import structlog
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    CheckTargets,
    CommentAsk,
    ConnectorConfig,
    FieldUse,
    Finding,
    Helpdesk,
    Page,
    Rejected,
    TicketWrite,
    WebhookSignature,
    WriteResult,
    find_markers,
    load_secret,
    marker_token,
    require_secret,
)
from syncd.errors import ApiError, AuthError, ConfigError, Conflict, NotFound, PayloadError, TransientError
from syncd.http import HttpClient, RateHeaders, expect_dict, object_or_empty
from syncd.records import Comment, Customer, Organization, Ref, Ticket, format_time, parse_time
from syncd.writes import FollowUpTicket, TicketUpdate

log = structlog.get_logger("syncd.connectors.zendesk")

EXPORT_PATH = "/api/v2/incremental/tickets/cursor"
EVENTS_PATH = "/api/v2/incremental/ticket_events"
EXPORT_LEAVES_OUT = 60  # seconds: both exports leave out the changes of the last minute
# A ticket whose comments start this long before the rest of its page's is read on its own
# (a first sync of a ticket opened months ago would otherwise page through months of events).
EVENTS_REACH = timedelta(days=2)
# How many single comment reads one more events page is worth: the export allows 10
# requests a minute, the account hundreds, so an events page is dearer than one read.
EVENTS_PAGE_WORTH = 10
# The most comments a poll's events window keeps for tickets no page has asked about yet;
# beyond it the oldest events page's comments are let go (see _EventsWindow).
EVENTS_HELD_MAX = 10_000
EVENTS_HELD_CHARS = 8_000_000  # and at most this much of their text (a comment may be long)
# The most tickets a poll's events mark may leave out (their ids are stored with the cursor).
MARK_PENDING_MAX = 1000
FIELDS_PATH = "/api/v2/ticket_fields"  # unpaginated: every field in one answer
TEXT_FIELD_TYPES = frozenset({"text", "textarea"})
STATUS_PURPOSE = "where syncd shows the linked issues' status"
LINK_PURPOSE = "where agents paste an issue key or URL"
TICKETS_PATH = "/api/v2/tickets"
COMMENTS_PAGE_SIZE = 100  # the most List Comments returns per page
BULK_LIMIT = 100  # Update Many takes up to 100 ids
JOB_POLL_LIMIT = 60
JOBS_PATH = "/api/v2/job_statuses/show_many"
JOBS_PER_POLL = 100  # job ids per Show Many Job Statuses request
MAX_SAFE_UPDATE_TRIES = 3


class ZendeskConfig(ConnectorConfig):
    """Settings for one Zendesk Support account."""

    kind: Literal["zendesk"] = "zendesk"
    url: str = Field(description="The account's base URL, e.g. https://acme.zendesk.com (API paths are under /api/v2).")
    email: str | None = Field(None, description="Agent or admin address, for API token authentication.")
    token: SecretStr | None = Field(None, description="API token (with email).")
    token_file: str | None = Field(None, description="File holding the API token.")
    oauth_token: SecretStr | None = Field(None, description="OAuth access token (instead of email and token).")
    oauth_token_file: str | None = Field(None, description="File holding the OAuth access token.")
    status_field_id: int | None = Field(
        None, description="Custom ticket field syncd writes the linked issue status to."
    )
    link_field_id: int | None = Field(
        None, description="Custom ticket field where agents may paste an issue key or URL."
    )
    backfill_days: int = Field(30, ge=0, le=3650, description="How far back the first poll starts.")
    page_size: int = Field(1000, ge=1, le=1000, description="Tickets per export page.")

    @model_validator(mode="after")
    def _check_credentials(self) -> "ZendeskConfig":
        for key in ("token_file", "oauth_token_file"):
            _check_readable(key, getattr(self, key))
        has_oauth = self.oauth_token is not None or self.oauth_token_file is not None
        has_token = self.token is not None or self.token_file is not None
        if has_oauth:
            return self
        if has_token and not self.email:
            raise ValueError("token is set but email is not: set email to the address the API token belongs to")
        if not has_token:
            raise ValueError(
                "no credentials: set email and token (env SYNCD_CONNECTORS__<NAME>__TOKEN) "
                "or token_file, or oauth_token / oauth_token_file"
            )
        return self

    def auth(self, connector: str = "zendesk") -> tuple[Any, dict[str, str]]:
        """(requests auth, extra headers) for the connector named ``connector``; OAuth wins when both are given."""
        oauth = load_secret(connector, "oauth_token", self.oauth_token, self.oauth_token_file)
        if oauth is not None:
            return None, {"Authorization": f"Bearer {oauth.get_secret_value()}"}
        token = require_secret(connector, "token", self.token, self.token_file, "put the API token in it")
        assert token is not None and self.email  # guaranteed by the validator
        return (f"{self.email}/token", token.get_secret_value()), {}


def _check_readable(key: str, path: str | None) -> None:
    if path is None:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            content = fh.read().strip()
    except OSError as exc:
        raise ValueError(
            f"{key} {path!r} cannot be read ({exc.strerror or exc}): check the path and that syncd's user may read it"
        ) from None
    if not content:
        raise ValueError(f"{key} {path!r} is empty: put the secret in it")


class ZendeskConnector(Helpdesk):
    kind = "zendesk"
    display_name = "Zendesk"
    # Zendesk signs each webhook: base64 HMAC-SHA256 of the timestamp header's text then the body.
    webhook = WebhookSignature(
        "X-Zendesk-Webhook-Signature",
        encoding="base64",
        timestamp_header="X-Zendesk-Webhook-Signature-Timestamp",
    )
    fake = "connectors.zendesk.fake:ZendeskFake"
    config_model = ZendeskConfig
    # Zendesk's own statuses are the helpdesk contract's canonical words
    # (connectors.base.TICKET_STATUSES): they pass through unchanged.
    status_field = "status_field_id"
    config: ZendeskConfig
    # Notes are sent as comment.body, which Zendesk shows as written (it makes
    # the HTML itself): plain text, so nothing in them is escaped.
    text_format = "plain"
    # The ticket events export brings a page of tickets' comments (page_comments);
    # Update Many takes a different update for each of up to 100 tickets (update_each).
    comments_by_page = True
    bulk_updates = BULK_LIMIT
    _events_refused = False
    _window: "_EventsWindow | None" = None  # the events window of the poll under way
    _mark: "_EventsMark | None" = None  # what the last poll's window read, while a poll is under way
    _page_out: Page | None = None  # the page of the poll under way that page_comments answers

    def make_http(self) -> HttpClient:
        auth, headers = self.config.auth(self.name)
        return HttpClient(
            self.name,
            self.config.url,
            auth=auth,
            headers={"Accept": "application/json", **headers},
            # x-rate-limit(-remaining) is on every response; ratelimit-reset
            # (seconds from now) on most. A 429 carries Retry-After.
            rate_headers=RateHeaders(
                remaining="x-rate-limit-remaining", limit="x-rate-limit", reset="ratelimit-reset", reset_is_delta=True
            ),
            **self.http_options(),
        )

    # -- identity -------------------------------------------------------------

    def check(self) -> str:
        body = self._get("/api/v2/users/me", endpoint="GET /api/v2/users/me")
        user = body.get("user")
        if not isinstance(user, dict) or user.get("id") is None:
            raise AuthError(
                self.name,
                "Zendesk answered as an anonymous user: the credentials were not "
                "accepted; check email and token (API token access must be enabled in the "
                "Admin Center) or oauth_token",
            )
        role = user.get("role") or "unknown role"
        who = f"{user.get('name') or '?'} <{user.get('email') or '?'}> ({role})"
        if role == "end-user":
            raise AuthError(self.name, f"{who} is an end user: syncd needs an agent or admin account")
        if role != "admin":
            who += "; warning: the incremental ticket export needs an admin, polling will be refused"
        return who

    def check_objects(self, targets: CheckTargets) -> list[Finding]:
        """Every custom field syncd reads or writes exists, is active, and (where
        syncd writes free text) is a text field: one List Ticket Fields request."""
        uses = list(targets.fields)
        key = f"connectors.{self.name}"
        if self.config.status_field_id is not None:
            uses.insert(0, FieldUse(f"{key}.status_field_id", str(self.config.status_field_id), STATUS_PURPOSE, True))
        if self.config.link_field_id is not None:
            uses.insert(0, FieldUse(f"{key}.link_field_id", str(self.config.link_field_id), LINK_PURPOSE, text=True))
        if not uses:
            return []
        body = self._get(FIELDS_PATH, endpoint=f"GET {FIELDS_PATH}")
        listed = body.get("ticket_fields")
        if not isinstance(listed, list):
            raise PayloadError(self.name, "ticket fields: the answer has no 'ticket_fields' list", payload=body)
        fields = {str(f.get("id")): f for f in listed if isinstance(f, dict)}
        findings = []
        for use in uses:
            found = fields.get(use.field_id)
            if found is None:
                findings.append(
                    Finding(
                        "error",
                        use.where,
                        f"Zendesk has no ticket field {use.field_id} ({use.purpose}); use the id of a field "
                        "listed in Admin Center > Objects and rules > Tickets > Fields",
                    )
                )
                continue
            title = f'field {use.field_id} "{found.get("title") or "?"}"'
            kind = str(found.get("type") or "?")
            if found.get("active") is False:
                findings.append(
                    Finding("error", use.where, f"{title} is inactive: agents do not see it; activate it in Zendesk")
                )
            elif use.writes and kind not in TEXT_FIELD_TYPES:
                findings.append(
                    Finding(
                        "error",
                        use.where,
                        f"{title} is of type {kind}; syncd writes free text to it ({use.purpose}): "
                        "use a text or multi-line text field",
                    )
                )
            elif use.text and kind not in TEXT_FIELD_TYPES:
                findings.append(
                    Finding(
                        "warning",
                        use.where,
                        f"{title} is of type {kind}; syncd reads free text there ({use.purpose}): a text field fits",
                    )
                )
        return findings

    def ticket_url(self, ticket_id: str) -> str:
        return f"{self.config.url}/agent/tickets/{ticket_id}"

    def ticket_url_pattern(self) -> str:
        parts = urlsplit(self.config.url)
        base = re.escape(parts.netloc + parts.path.rstrip("/"))
        return rf"https?://{base}/agent/tickets/(?P<id>\d+)"

    def link_fields(self) -> tuple[str, ...]:
        return (str(self.config.link_field_id),) if self.config.link_field_id is not None else ()

    # -- the feed ---------------------------------------------------------------

    def poll(self, cursor: str | None) -> Iterator[Page]:
        # The pages of one poll share one window of the ticket events export (page_comments);
        # it ends with the poll. What it read is kept in the stored cursor as a mark (see
        # _EventsMark) that lets the next polls start later; nothing else outlives the poll.
        window = self._window = _EventsWindow()
        self._mark = _EventsMark.parse(cursor)
        self._cleared: set[str] = set()
        try:
            yield from self._pages(cursor)
        finally:
            if self._window is window:
                self._window, self._mark, self._page_out = None, None, None
                self._cleared = set()

    def _pages(self, cursor: str | None) -> Iterator[Page]:
        position = self._parse_cursor(cursor)
        stored: dict[str, Any] | None = dict(position) if cursor is not None else None
        while True:
            params: dict[str, Any] = {**position, "per_page": self.config.page_size, "include": "users,organizations"}
            body = self._get(EXPORT_PATH, params=params, endpoint=f"GET {EXPORT_PATH}")
            raw_tickets = body.get("tickets")
            if not isinstance(raw_tickets, list):
                raise PayloadError(
                    self.name,
                    "incremental export: the response has no 'tickets' list "
                    f"(keys: {', '.join(sorted(body)) or 'none'})",
                    payload=body,
                )
            users, orgs = _index(body.get("users")), _index(body.get("organizations"))
            records, rejected = [], []
            for raw in raw_tickets:
                if isinstance(raw, dict) and raw.get("status") == "deleted":
                    continue
                try:
                    records.append(self._ticket(raw, users, orgs))
                except PayloadError as exc:
                    rejected.append(Rejected(exc.record_id, str(exc), raw))
            after = body.get("after_cursor")
            stuck = after == position.get("cursor")  # never loop on a cursor that does not move
            if isinstance(after, str) and after:
                stored = {"cursor": after}
                position = {"cursor": after}
            elif stored is None:
                stored = dict(position)
            done = body.get("end_of_stream") is True or not after or stuck
            page = Page(records=records, cursor=self._cursor_text(stored), done=done, rejected=rejected)
            self._page_out = page  # page_comments puts the window's mark in its cursor
            yield page
            if done:
                return

    def _cursor_text(self, position: dict[str, Any]) -> str:
        """The cursor to store: the feed's position, and what the ticket events export
        has been read through (:meth:`_current_mark`)."""
        mark = self._current_mark()
        return json.dumps({**position, "events": mark.to_json()} if mark is not None else position)

    def _current_mark(self) -> "_EventsMark | None":
        """The mark the poll started with, less the tickets it left out that a page has
        since been handed (its answer brought every comment up to the ticket's change),
        joined with what this poll's window read (:meth:`_EventsMark.join`)."""
        base = self._mark
        if base is not None and base.pending & self._cleared:
            base = _EventsMark(base.start, base.through, base.pending - self._cleared)
        window = self._window
        return _EventsMark.join(base, window.mark() if window is not None else None)

    def _parse_cursor(self, cursor: str | None) -> dict[str, Any]:
        if cursor is None:
            now = self.clock().timestamp()
            # The export refuses a start time within the last minute.
            return {"start_time": int(min(now - self.config.backfill_days * 86400, now - 60))}
        try:
            value = json.loads(cursor)
        except ValueError:
            value = None
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "events"}  # the events mark (_EventsMark)
        if isinstance(value, dict) and len(value) == 1:
            if isinstance(value.get("cursor"), str) and value["cursor"]:
                return {"cursor": value["cursor"]}
            if isinstance(value.get("start_time"), int):
                return {"start_time": value["start_time"]}
        raise ConfigError(
            [
                f"connector {self.name}: stored cursor {cursor[:60]!r} is not a Zendesk export "
                "cursor; reset this connector's cursor to poll from backfill_days"
            ]
        )

    # -- reads ----------------------------------------------------------------

    def get_ticket(self, ticket_id: str) -> Ticket:
        path = f"/api/v2/tickets/{_numeric(ticket_id)}"
        body = self._get(path, params={"include": "users,organizations"}, endpoint="GET /api/v2/tickets/{ticket_id}")
        if body.get("ticket") is None:
            raise PayloadError(
                self.name, f"ticket {ticket_id}: the response has no 'ticket'", record_id=str(ticket_id), payload=body
            )
        return self._ticket(body["ticket"], _index(body.get("users")), _index(body.get("organizations")))

    def comments(self, ticket_id: str, after: str | None = None) -> list[Comment]:
        if after is None:
            return list(self._iter_comments(ticket_id, newest_first=False))
        floor = int(_numeric(after))
        newer = []
        for comment in self._iter_comments(ticket_id, newest_first=True):
            if int(comment.id) <= floor:
                break
            newer.append(comment)
        newer.reverse()
        return newer

    def find_marker(self, ticket_id: str, key: str) -> bool:
        return any(key in c.markers for c in self._iter_comments(ticket_id, newest_first=True))

    @functools.cached_property
    def _agent_names(self) -> dict[str, str | None]:
        return {}

    def agent_name(self, user_id: str) -> str | None:
        """``GET /api/v2/users/{user_id}``, once per agent per process (a mirrored note names its author)."""
        if user_id not in self._agent_names:
            body = self._get(f"/api/v2/users/{_numeric(user_id)}", endpoint="GET /api/v2/users/{user_id}")
            user = object_or_empty(body.get("user"))
            self._agent_names[user_id] = str(user.get("name") or "") or None
        return self._agent_names[user_id]

    def page_comments(self, asks: list[CommentAsk]) -> dict[str, list[Comment] | PayloadError]:
        """The new comments of a page of tickets from the ticket events export.

        During a poll every page shares one events window (:class:`_EventsWindow`):
        the export is read forward once, from the earliest ``since`` of the
        first page that needs it, and each page takes the comments already
        read, reading on only past what the window covers. Outside a poll
        (a quarantined ticket read again) a window serves one call.

        A ticket is read with :meth:`comments` instead when its ``since`` lies
        more than ``EVENTS_REACH`` before the page's latest change (unless the
        window already reaches back to it); when the window does not reach it
        and one more events page would cost more than ``EVENTS_PAGE_WORTH``
        reads of the tickets left (on the poll's last page: before it, the
        window reads on for the pages to come); when a second the ticket's comments may fall
        in could not be read whole (a full page of events in one second); and
        when a comment of it the window read was let go (memory) and the ask's
        ``after`` does not show it read. An account whose token may not read
        the export (agents) reads every ticket one by one from then on."""
        if not asks:
            return {}
        if self._events_refused:
            return super().page_comments(asks)
        window = self._window if self._window is not None else _EventsWindow()
        if self._window is not None and self._mark is not None:
            asks = [self._mark.later_start(a) for a in asks]
        reach = _second(max(a.until for a in asks) - EVENTS_REACH)
        if window.floor is not None:
            reach = min(reach, window.floor)  # where the window already reaches costs nothing more
        since = {a.ticket_id: _second(a.since) for a in asks if a.since is not None}
        near = [a for a in asks if since.get(a.ticket_id, -1) >= reach]
        far = [a for a in asks if since.get(a.ticket_id, -1) < reach]
        opened = window.floor
        if near and opened is not None:
            early = [a for a in near if since[a.ticket_id] < opened]
            if len(early) > EVENTS_PAGE_WORTH:
                # Cheaper to read the stream again from the earliest of them than them one by one.
                if self._window is not None:
                    # What the window read so far stays in the poll's mark: its claims are
                    # about pages already committed and the tickets it left out.
                    self._mark, self._cleared = self._current_mark(), set()
                    self._window = _EventsWindow()
                window = self._window if self._window is not None else _EventsWindow()
            elif early:
                near = [a for a in near if since[a.ticket_id] >= opened]
                far.extend(early)
        if not near:
            return super().page_comments(far)
        if window.floor is None:
            window.open(min(since[a.ticket_id] for a in near))
        start_of_window = window.floor
        assert start_of_window is not None  # opened above
        found = window.take({a.ticket_id for a in near})
        # While later pages of the poll follow, what the window reads on serves them too (the
        # feed lists their changes later): the reads it saves are not only this page's.
        more_to_come = self._window is window and self._page_out is not None and not self._page_out.done
        ended = False  # this call saw the end of the stream: every ticket of the page is covered
        pages = 0
        while not ended and not window.stopped:
            uncovered = [a for a in near if _second(a.until) > window.covered]
            if not uncovered:
                break
            if pages and pages * EVENTS_PAGE_WORTH >= len(uncovered) and not more_to_come:
                break  # reading ticket by ticket costs less of the budgets from here on
            start = window.next_start
            try:
                body = self._events_page(start)
            except AuthError:
                log.info(
                    "the ticket events export is refused to this account; comments are read ticket by ticket",
                    connector=self.name,
                )
                self._events_refused = True
                self._window = None
                return super().page_comments(asks)
            except ApiError as exc:
                # A bad or lost answer of the export costs this page's tickets one read
                # each, not the poll (which would read the feeds again).
                log.info(
                    "the ticket events export did not answer; this page's comments are read ticket by ticket",
                    connector=self.name,
                    error=str(exc),
                )
                window.let_go(found)
                window.pending.update(found)  # not handed to the engine from the window
                return super().page_comments(asks)
            pages += 1
            window.new_page(start)
            for event in body["ticket_events"]:
                self._event_comments(event, window, found)
            given = body.get("end_time")
            end = given if isinstance(given, int) and not isinstance(given, bool) and given >= start else None
            if body.get("end_of_stream") is True:
                ended = True
                if end is not None:
                    # The export leaves out the last minute, so a second older than that is
                    # whole; a later one may still gain events (as it may where the export
                    # shows everything, like the sandbox's by default): a later page reads it again.
                    whole = end <= _second(self.clock()) - EXPORT_LEAVES_OUT
                    window.advance(end, end if whole else end - 1)
                else:
                    window.stopped = True
            elif end is None:
                window.stopped = True  # the stream does not say where it goes on
            elif end == start:
                # A full page of one second: the next page would start there again. The rest
                # of that second is never read; a ticket whose comments may lie in it is read
                # on its own, and the stream goes on after it.
                window.holes.append(start)
                window.advance(start + 1, start)
            else:
                window.advance(end, end - 1)
            window.trim(EVENTS_HELD_MAX, EVENTS_HELD_CHARS)
        out: dict[str, list[Comment] | PayloadError] = {}
        for ask in near:
            first, until = since[ask.ticket_id], _second(ask.until)
            floor = int(_numeric(ask.after)) if ask.after else -1
            reached = ended or until <= window.covered
            whole = not any(first <= hole <= until for hole in window.holes)
            kept = window.dropped.get(ask.ticket_id, -1) <= floor
            if first >= start_of_window and reached and whole and kept:
                out[ask.ticket_id] = sorted((c for c in found[ask.ticket_id] if int(c.id) > floor), key=_comment_id)
            else:
                far.append(ask)
        window.let_go(found)
        out.update(super().page_comments(far))
        if self._window is window and self._page_out is not None:
            window.handed({tid for tid, answer in out.items() if not isinstance(answer, PayloadError)})
            window.pending.update(tid for tid, answer in out.items() if isinstance(answer, PayloadError))
            if self._mark is not None and self._mark.pending:
                # A ticket the stored mark left out, handed every comment up to its change
                # with this page, need not be left out by the mark stored with this page.
                self._cleared.update(
                    t for t, answer in out.items() if t in self._mark.pending and not isinstance(answer, PayloadError)
                )
            self._page_out.cursor = self._cursor_text(_position(self._page_out.cursor))
        return out

    def _events_page(self, start: int) -> dict:
        """One page of the ticket events export from ``start``; a wrong-shaped answer is asked again once."""
        for attempt in (1, 2):
            try:
                body = self._get(
                    EVENTS_PATH,
                    params={"start_time": start, "include": "comment_events"},
                    endpoint=f"GET {EVENTS_PATH}",
                )
            except PayloadError:
                if attempt == 2:
                    raise
                continue
            if isinstance(body.get("ticket_events"), list):
                return body
            if attempt == 2:
                raise PayloadError(
                    self.name,
                    "ticket events export: the response has no 'ticket_events' list "
                    f"(keys: {', '.join(sorted(body)) or 'none'})",
                    payload=body,
                )
        raise AssertionError("unreachable")

    def _event_comments(self, event: Any, window: "_EventsWindow", found: dict[str, list[Comment]]) -> None:
        """The comments one ticket event carries (each once): to ``found`` for the
        tickets asked about now, else held by the window for a later page."""
        if not isinstance(event, dict):
            return
        tid = event.get("ticket_id")
        if not _is_id(tid) or tid is None:
            return
        ticket_id = str(tid)
        second = event.get("timestamp")
        if not isinstance(second, int) or isinstance(second, bool):
            when = parse_time(event.get("created_at")) if isinstance(event.get("created_at"), str) else None
            second = _second(when) if when is not None else window.next_start
        children = event.get("child_events")
        for child in children if isinstance(children, list) else []:
            if not isinstance(child, dict) or child.get("event_type") != "Comment":
                continue
            cid = child.get("id")
            if not isinstance(cid, int) or isinstance(cid, bool) or cid in window.recent:
                continue
            if not isinstance(child.get("body"), str) and not isinstance(child.get("plain_body"), str):
                # Not the comment itself (the export was asked without its sideload).
                log.warning("skipping a comment event without its text", connector=self.name, ticket=ticket_id)
                continue
            window.recent[cid] = second
            raw = child if child.get("created_at") else {**child, "created_at": event.get("created_at")}
            comment = self._comment(raw, ticket_id)
            if comment is None:
                continue
            if ticket_id in found:
                found[ticket_id].append(comment)
            else:
                window.hold(ticket_id, comment)

    def _iter_comments(self, ticket_id: str, *, newest_first: bool) -> Iterator[Comment]:
        """Comments page by page; callers stop early and save the rest."""
        path = f"/api/v2/tickets/{_numeric(ticket_id)}/comments"
        params: dict[str, Any] = {"page[size]": COMMENTS_PAGE_SIZE}
        if newest_first:
            params["sort"] = "-created_at"
        while True:
            body = self._get(path, params=params, endpoint="GET /api/v2/tickets/{ticket_id}/comments")
            raw_comments = body.get("comments")
            if not isinstance(raw_comments, list):
                raise PayloadError(
                    self.name,
                    f"ticket {ticket_id} comments: the response has no 'comments' list",
                    record_id=str(ticket_id),
                    payload=body,
                )
            for raw in raw_comments:
                comment = self._comment(raw, ticket_id)
                if comment is not None:
                    yield comment
            meta = object_or_empty(body.get("meta"))
            after = meta.get("after_cursor")
            if not meta.get("has_more") or not after:
                return
            params = {**params, "page[after]": after}

    # -- writes ---------------------------------------------------------------

    def update_ticket(
        self, ticket_id: str, update: TicketUpdate, key: str, current: Ticket | None = None
    ) -> WriteResult:
        """One PUT. Tag changes and a conditional status need the ticket's
        current tags, status and ``updated_at``: taken from ``current`` (the
        engine's snapshot) when given, else read first; either way the write is
        a ``safe_update``, so a stale guess is refused (409) and read again."""
        tid = _numeric(ticket_id)
        must_read = bool(update.status and update.status_from) or bool(update.add_tags or update.remove_tags)
        for attempt in range(1, MAX_SAFE_UPDATE_TRIES + 1):
            if must_read and attempt == 1 and current is not None:
                if current.status == "closed":
                    raise Conflict(
                        self.name,
                        f"ticket {tid} is closed and cannot be updated; a follow-up needs a new ticket",
                        status=422,
                    )
                known: dict | None = {
                    "status": current.status,
                    "tags": list(current.tags),
                    "updated_at": format_time(current.updated_at),
                }
            else:
                known = self._read_for_update(tid) if must_read else None
            current_json = known
            ticket = self._write_body(update, key, current_json)
            if current_json is not None:
                if not ticket:  # nothing left to change
                    return WriteResult(updated_at=parse_time(current_json.get("updated_at")), id=tid)
                ticket["safe_update"] = True
                ticket["updated_stamp"] = current_json.get("updated_at")
            try:
                body = self.http.request_json(
                    "PUT", f"/api/v2/tickets/{tid}", json={"ticket": ticket}, endpoint="PUT /api/v2/tickets/{ticket_id}"
                )
            except Conflict as exc:
                if exc.status == 409 and current_json is not None and attempt < MAX_SAFE_UPDATE_TRIES:
                    log.info(
                        "ticket changed while writing, reading it again",
                        connector=self.name,
                        ticket=tid,
                        attempt=attempt,
                    )
                    continue
                raise self._refused(tid, exc) from None
            return self._write_result(tid, body)
        raise AssertionError("unreachable")  # the loop returns or raises

    def update_tickets(
        self, ticket_ids: list[str], update: TicketUpdate, key: str
    ) -> dict[str, WriteResult | Exception]:
        """The same update on many tickets: :meth:`update_each` with one body repeated."""
        return self.update_each([TicketWrite(t, update, key) for t in ticket_ids])

    def update_each(self, writes: list[TicketWrite]) -> dict[str, WriteResult | Exception]:
        """A different update on each ticket: one Update Many with a ``tickets``
        array per 100 tickets, every request sent before any job is polled, then
        the jobs of all of them polled together (Show Many Job Statuses).

        Each ticket's note carries its own marker. Tags go as
        ``additional_tags``/``remove_tags``, so no ticket is read first. A
        conditional status (which needs the ticket's current status) and a
        second write to a ticket already in the batch go one by one. A job
        whose end is not seen (a failed poll, or still working after
        ``JOB_POLL_LIMIT`` checks) reports its tickets as maybe applied: their
        markers are looked for before they are sent again."""
        results: dict[str, WriteResult | Exception] = {}
        bulk: list[tuple[str, dict[str, Any]]] = []
        alone: list[TicketWrite] = []
        for w in writes:
            tid = _numeric(w.ticket_id)
            if (w.update.status and w.update.status_from) or any(t == tid for t, _ in bulk):
                alone.append(w)
                continue
            ticket = self._write_body(w.update, w.key, None)
            if w.update.add_tags:
                ticket["additional_tags"] = list(dict.fromkeys(w.update.add_tags))
            if w.update.remove_tags:
                ticket["remove_tags"] = list(dict.fromkeys(w.update.remove_tags))
            bulk.append((tid, {"id": int(tid), **ticket}))
        jobs: dict[str, tuple[list[str], dict]] = {}
        for start in range(0, len(bulk), BULK_LIMIT):
            chunk = bulk[start : start + BULK_LIMIT]
            ids = [tid for tid, _ in chunk]
            try:
                body = self.http.request_json(
                    "PUT",
                    "/api/v2/tickets/update_many",
                    json={"tickets": [ticket for _, ticket in chunk]},
                    endpoint="PUT /api/v2/tickets/update_many",
                )
                job = expect_dict(
                    self.name, body.get("job_status") if isinstance(body, dict) else None, "update_many: job_status"
                )
                if not job.get("id"):
                    raise PayloadError(self.name, "update_many: job_status has no id", payload=body)
                jobs[str(job["id"])] = (ids, job)
            except ApiError as exc:
                results.update({tid: exc for tid in ids})
        results.update(self._await_jobs(jobs))
        for w in alone:
            try:
                results[w.ticket_id] = self.update_ticket(w.ticket_id, w.update, w.key, current=w.current)
            except Exception as exc:  # reported per ticket to the caller
                results[w.ticket_id] = exc
        return results

    def _await_jobs(self, jobs: dict[str, tuple[list[str], dict]]) -> dict[str, WriteResult | Exception]:
        """The results of several Update Many jobs, polled together until each ends."""
        results: dict[str, WriteResult | Exception] = {}
        waiting = dict(jobs)
        wait = 1.0
        for attempt in range(JOB_POLL_LIMIT + 1):
            for job_id, (chunk, job) in list(waiting.items()):
                status = job.get("status")
                if status == "completed":
                    results.update(self._job_results(job, chunk))
                elif status == "failed":
                    reason = job.get("message") or "job failed"
                    results.update(
                        {tid: ApiError(self.name, f"ticket {tid}: bulk update failed: {reason}") for tid in chunk}
                    )
                else:
                    continue
                del waiting[job_id]
            if not waiting or attempt == JOB_POLL_LIMIT:
                break
            self._sleep(wait)
            wait = min(wait * 2, 10.0)
            ids = list(waiting)
            try:
                for start in range(0, len(ids), JOBS_PER_POLL):
                    asked = ids[start : start + JOBS_PER_POLL]
                    answer = self._get(JOBS_PATH, params={"ids": ",".join(asked)}, endpoint=f"GET {JOBS_PATH}")
                    statuses = answer.get("job_statuses")
                    if not isinstance(statuses, list):
                        raise PayloadError(
                            self.name, "job statuses: the answer has no 'job_statuses' list", payload=answer
                        )
                    for job in statuses:
                        if isinstance(job, dict) and str(job.get("id")) in waiting:
                            waiting[str(job["id"])] = (waiting[str(job["id"])][0], job)
            except ApiError as exc:
                for chunk, _ in waiting.values():
                    results.update(
                        {
                            tid: TransientError(
                                self.name,
                                f"ticket {tid}: the bulk update's job could not be followed "
                                f"({_detail(self.name, exc)})",
                                maybe_applied=True,
                            )
                            for tid in chunk
                        }
                    )
                return results
        for job_id, (chunk, job) in waiting.items():
            results.update(
                {
                    tid: TransientError(
                        self.name,
                        f"ticket {tid}: update_many job {job_id} still {job.get('status')!r} "
                        f"after {JOB_POLL_LIMIT} checks",
                        maybe_applied=True,
                    )
                    for tid in chunk
                }
            )
        return results

    def _read_for_update(self, tid: str) -> dict:
        body = self._get(f"/api/v2/tickets/{tid}", endpoint="GET /api/v2/tickets/{ticket_id}")
        current = expect_dict(self.name, body.get("ticket"), f"ticket {tid}", record_id=tid)
        if current.get("status") == "closed":
            raise Conflict(
                self.name, f"ticket {tid} is closed and cannot be updated; a follow-up needs a new ticket", status=422
            )
        return current

    def _write_body(self, update: TicketUpdate, key: str, current: dict | None) -> dict[str, Any]:
        """The ``ticket`` object of an update; tags only when ``current`` is known."""
        ticket: dict[str, Any] = {}
        if update.note:
            ticket["comment"] = {"body": f"{update.note}\n\n[{marker_token(key)}]", "public": False}
        if update.fields:
            ticket["custom_fields"] = [
                {"id": self._field_id(fid), "value": value} for fid, value in update.fields.items()
            ]
        if update.status:
            if not update.status_from:
                ticket["status"] = update.status
            elif (
                current is not None
                and current.get("status") in update.status_from
                and current.get("status") != update.status
            ):
                ticket["status"] = update.status
        if current is not None and (update.add_tags or update.remove_tags):
            tags = [t for t in current.get("tags") or [] if isinstance(t, str)]
            wanted = [t for t in tags if t not in update.remove_tags]
            wanted += [t for t in dict.fromkeys(update.add_tags) if t not in wanted and t not in update.remove_tags]
            if wanted != tags:
                ticket["tags"] = wanted
        return ticket

    def _field_id(self, fid: str) -> int:
        try:
            return int(fid)
        except (TypeError, ValueError):
            raise ConfigError(
                [
                    f"connector {self.name}: custom field id {fid!r} is not a number; use the "
                    "field's numeric id (GET /api/v2/ticket_fields lists them)"
                ]
            ) from None

    def _write_result(self, tid: str, body: Any) -> WriteResult:
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, dict):
            # The write landed; without updated_at the engine falls back on the marker.
            log.warning("update answered without the ticket", connector=self.name, ticket=tid)
            return WriteResult(id=tid)
        try:
            return WriteResult(updated_at=parse_time(ticket.get("updated_at")), id=tid)
        except ValueError:
            return WriteResult(id=tid)

    def _refused(self, tid: str, exc: Conflict) -> Conflict:
        if exc.status == 422:
            return Conflict(
                self.name,
                f"ticket {tid}: Zendesk refused the update ({exc}); a closed ticket "
                "cannot be updated, a follow-up needs a new ticket",
                status=422,
            )
        return exc

    def _job_results(self, job: dict, chunk: list[str]) -> dict[str, WriteResult | Exception]:
        out: dict[str, WriteResult | Exception] = {}
        results = job.get("results")
        for item in results if isinstance(results, list) else []:
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            tid = str(item["id"])
            if item.get("success") is False or item.get("error"):
                out[tid] = self._job_error(tid, item)
            else:
                out[tid] = WriteResult(id=tid)
        for tid in chunk:
            out.setdefault(tid, ApiError(self.name, f"ticket {tid}: the bulk update job reported no result"))
        return out

    def _job_error(self, tid: str, item: dict) -> ApiError:
        error = str(item.get("error") or "failed")
        message = f"ticket {tid}: bulk update failed: {error}"
        if item.get("details"):
            message += f" ({str(item['details'])[:200]})"
        if error in ("TicketNotFound", "RecordNotFound"):
            return NotFound(self.name, message, status=404)
        if error in ("PermissionDenied", "Forbidden"):
            return AuthError(self.name, message, status=403)
        return Conflict(self.name, message, status=422)

    # -- follow-ups -------------------------------------------------------------

    def create_follow_up(self, source_id: str, follow_up: FollowUpTicket, key: str) -> WriteResult:
        """One ``POST /api/v2/tickets`` with ``via_followup_source_id``.

        The requester is ``follow_up.requester_id``, or the source ticket's
        (one GET, which also checks that the source is closed: Zendesk
        ignores ``via_followup_source_id`` on any other ticket, and an open
        ticket should be updated, not followed up). The note is the first
        comment, private, with the marker in its text like every note; the
        marker is also the ticket's ``external_id``, which is what
        :meth:`find_follow_up` looks up. Tags, when given, replace the ones
        Zendesk would otherwise copy from the source ticket.
        """
        source = _numeric(source_id)
        assignee = self._user_id(source, "assignee_id", follow_up.assignee_id)
        requester = follow_up.requester_id
        if requester is None:
            requester = self._follow_up_requester(source)
        ticket: dict[str, Any] = {
            "via_followup_source_id": int(source),
            "subject": follow_up.subject,
            "requester_id": self._user_id(source, "requester_id", requester),
            "comment": {"body": f"{follow_up.note}\n\n[{marker_token(key)}]", "public": False},
            "external_id": marker_token(key),
        }
        if assignee is not None:
            ticket["assignee_id"] = assignee
        if follow_up.tags:
            ticket["tags"] = list(dict.fromkeys(follow_up.tags))
        try:
            response = self.http.request("POST", TICKETS_PATH, json={"ticket": ticket}, endpoint=f"POST {TICKETS_PATH}")
        except Conflict as exc:
            raise Conflict(
                self.name,
                f"ticket {source}: Zendesk refused the follow-up ticket "
                f"({_detail(self.name, exc)}); check that the requester and assignee still "
                "exist and that the assignee is an agent",
                status=exc.status,
            ) from None
        except ApiError as exc:
            raise _about(self.name, f"ticket {source}: creating its follow-up ticket", exc) from None
        return self._created(source, response)

    def find_follow_up(self, source_id: str, key: str) -> str | None:
        """The follow-up created with ``key``: ``GET /api/v2/tickets?external_id=<marker>``.

        Reliable straight after the write, unlike the Search API: List
        Tickets filters the tickets themselves, while search reads an index
        that trails new tickets by minutes (a crash just after the POST would
        find nothing there and the follow-up would be created twice). Only
        archived tickets are left out, which a new ticket never is. External
        ids need not be unique, so a ticket counts only when its
        ``external_id`` is our marker and, where the answer names the source
        (``via.source`` with ``rel: follow_up``), that source is
        ``source_id``. Only syncd writes this marker, so one page is enough.
        """
        source = _numeric(source_id)
        token = marker_token(key)
        body = self._get(TICKETS_PATH, params={"external_id": token}, endpoint=f"GET {TICKETS_PATH}")
        raw_tickets = body.get("tickets")
        if not isinstance(raw_tickets, list):
            raise PayloadError(
                self.name,
                f"ticket {source}: looking for its follow-up, the answer has no 'tickets' list",
                record_id=source,
                payload=body,
            )
        found = [
            raw["id"]
            for raw in raw_tickets
            if isinstance(raw, dict)
            and raw.get("external_id") == token
            and isinstance(raw.get("id"), int)
            and not isinstance(raw.get("id"), bool)
            and _follow_up_source(raw) in (None, source)
        ]
        return str(min(found)) if found else None

    def _user_id(self, source: str, what: str, value: str | None) -> int | None:
        """A user id for the follow-up; one that is not a Zendesk id cannot be sent, ever."""
        if value is None:
            return None
        text = str(value).strip()
        if not text.isdigit():
            raise Conflict(
                self.name,
                f"ticket {source}: the follow-up's {what} {value!r} is not a Zendesk user id (digits expected)",
            )
        return int(text)

    def _follow_up_requester(self, source: str) -> str:
        body = self._get(f"/api/v2/tickets/{source}", endpoint="GET /api/v2/tickets/{ticket_id}")
        ticket = expect_dict(self.name, body.get("ticket"), f"ticket {source}", record_id=source)
        status = ticket.get("status")
        if status != "closed":
            raise Conflict(
                self.name,
                f"ticket {source} is {status!r}, not closed: Zendesk makes follow-up "
                "tickets of closed tickets only; update the ticket itself",
            )
        requester = ticket.get("requester_id")
        if requester is None or not _is_id(requester):
            raise PayloadError(
                self.name,
                f"ticket {source} has no requester_id ({requester!r}); give the follow-up a requester",
                record_id=source,
                payload=ticket,
            )
        return str(requester)

    def _created(self, source: str, response: Any) -> WriteResult:
        """The new ticket's id from the 201 body, else from its Location header."""
        try:
            body = response.json()
        except ValueError:
            body = None
        ticket = body.get("ticket") if isinstance(body, dict) else None
        ticket = ticket if isinstance(ticket, dict) else {}
        tid = ticket.get("id")
        if not isinstance(tid, int) or isinstance(tid, bool):
            match = re.search(r"/tickets/(\d+)(?:\.json)?/?$", response.headers.get("Location") or "")
            if match is None:
                raise TransientError(
                    self.name,
                    f"ticket {source}: the follow-up ticket was created but the "
                    "answer names no ticket; it will be found by its marker",
                    maybe_applied=True,
                )
            tid = int(match.group(1))
        origin = _follow_up_source(ticket)
        if isinstance(ticket.get("via"), dict) and origin != source:  # Zendesk ignored the source
            log.warning(
                "the new ticket is not linked as a follow-up",
                connector=self.name,
                ticket=str(tid),
                source=source,
                shown_source=origin,
            )
        try:
            updated_at = parse_time(ticket.get("updated_at"))
        except (TypeError, ValueError, AttributeError):
            updated_at = None
        return WriteResult(updated_at=updated_at, id=str(tid))

    # -- normalisation --------------------------------------------------------

    def _ticket(self, raw: Any, users: dict[int, dict], orgs: dict[int, dict]) -> Ticket:
        if not isinstance(raw, dict):
            raise PayloadError(self.name, f"ticket: expected an object, got {type(raw).__name__}", payload=raw)
        tid = raw.get("id")
        if not isinstance(tid, int) or isinstance(tid, bool):
            raise PayloadError(self.name, f"ticket without a numeric id ({tid!r})", payload=raw)
        rid = str(tid)

        def bad(what: str) -> PayloadError:
            return PayloadError(self.name, f"ticket {rid}: {what}", record_id=rid, payload=raw)

        status = raw.get("status")
        if not isinstance(status, str) or not status:
            raise bad(f"status is {status!r}, expected a string")
        try:
            updated_at = parse_time(raw.get("updated_at"))
            created_at = parse_time(raw.get("created_at"))
            format_time(updated_at), format_time(created_at)  # in range once made UTC
        except (TypeError, ValueError, AttributeError, OverflowError):
            raise bad("updated_at/created_at is not an ISO time") from None
        if updated_at is None:
            raise bad("updated_at is missing")
        tags = raw.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise bad("tags is not a list of strings")
        for key in ("requester_id", "organization_id", "assignee_id", "group_id", "ticket_form_id"):
            if not _is_id(raw.get(key)):
                raise bad(f"{key} is {type(raw.get(key)).__name__}, expected a numeric id or null")
        fields: dict[str, Any] = {}
        custom = raw.get("custom_fields") or []
        if not isinstance(custom, list):
            raise bad("custom_fields is not a list")
        for item in custom:
            if not isinstance(item, dict) or item.get("id") is None:
                raise bad("a custom field has no id")
            fields[str(item["id"])] = item.get("value")
        return Ticket(
            ref=Ref(self.name, rid),
            key=f"#{rid}",
            url=self.ticket_url(rid),
            subject=_text(raw.get("subject") or raw.get("raw_subject")),
            status=status,
            updated_at=updated_at,
            created_at=created_at,
            priority=raw.get("priority") if isinstance(raw.get("priority"), str) else None,
            requester=_customer(raw.get("requester_id"), users),
            organization=_organization(raw.get("organization_id"), orgs),
            assignee_id=_str_id(raw.get("assignee_id")),
            assignee_name=_user_name(raw.get("assignee_id"), users),
            group_id=_str_id(raw.get("group_id")),
            tags=tuple(tags),
            fields=fields,
            description=_text(raw.get("description")),
            form_id=_str_id(raw.get("ticket_form_id")),
        )

    def _comment(self, raw: Any, ticket_id: str) -> Comment | None:
        try:
            cid = raw["id"]
            body = raw.get("body") or raw.get("plain_body") or ""
            created = parse_time(raw.get("created_at"))
            if not isinstance(cid, int) or created is None or not isinstance(body, str):
                raise ValueError("id, body or created_at")
            format_time(created)  # in range once made UTC
        except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
            log.warning("skipping a malformed comment", connector=self.name, ticket=str(ticket_id))
            return None
        return Comment(
            id=str(cid),
            body=body,
            public=raw.get("public") is not False,
            author_id=_str_id(raw.get("author_id")),
            created_at=created,
            markers=find_markers(body),
        )

    def _get(self, path: str, *, params: dict[str, Any] | None = None, endpoint: str) -> dict:
        body = self.http.request_json("GET", path, params=params, endpoint=endpoint)
        return expect_dict(self.name, body, endpoint)


# -- helpers --------------------------------------------------------------------


class _EventsWindow:
    """What one poll has read of the ticket events export, shared by its pages.

    Every comment with an event at or after ``floor`` and through ``covered``
    (unix seconds) has been read, except in the seconds listed in ``holes``
    (a full page of events in one second, whose rest the export cannot page
    to). Comments of tickets no page has asked about yet are kept by events
    page (``held``, with the second the page started at), at most
    ``EVENTS_HELD_MAX`` of them and ``EVENTS_HELD_CHARS`` of their text: past
    that the oldest page's are let go (``released``, their tickets kept by the
    page's start). A comment let go, or handed to a page, is
    remembered only as its ticket's highest id (``dropped``): a later ask for
    that ticket is answered from the window only when its ``after`` shows
    that comment read, which it does once the page that got it committed.
    ``recent`` holds the ids read in the seconds the next page repeats."""

    def __init__(self) -> None:
        self.floor: int | None = None
        self.next_start = 0
        self.covered = -1
        self.holes: list[int] = []
        self.stopped = False
        self.held: list[tuple[int, dict[str, list[Comment]]]] = []
        self.held_count = 0
        self.held_chars = 0
        self.dropped: dict[str, int] = {}
        self.recent: dict[int, int] = {}
        # The tickets of the events pages whose held comments were let go for memory, by
        # the second each page started at, oldest first: no page was handed them.
        self.released: list[tuple[int, set[str]]] = []
        self.released_ids: set[str] = set()
        # Tickets with a comment read here that no page was handed because its page's
        # answer failed: the window's mark says nothing about them.
        self.pending: set[str] = set()

    def open(self, start: int) -> None:
        self.floor, self.next_start, self.covered = start, start, start - 1

    def advance(self, next_start: int, covered: int) -> None:
        self.next_start = next_start
        self.covered = max(self.covered, covered)
        self.recent = {cid: second for cid, second in self.recent.items() if second >= next_start}

    def new_page(self, start: int) -> None:
        self.held.append((start, {}))

    def hold(self, ticket_id: str, comment: Comment) -> None:
        self.held[-1][1].setdefault(ticket_id, []).append(comment)
        self.held_count += 1
        self.held_chars += len(comment.body)

    def take(self, tickets: set[str]) -> dict[str, list[Comment]]:
        """The comments held for ``tickets`` (oldest page first), no longer held."""
        found: dict[str, list[Comment]] = {t: [] for t in tickets}
        for _start, group in self.held:
            for ticket_id in tickets & group.keys():
                comments = group.pop(ticket_id)
                found[ticket_id].extend(comments)
                self.held_count -= len(comments)
                self.held_chars -= sum(len(c.body) for c in comments)
        self.held = [(start, group) for start, group in self.held if group]
        return found

    def let_go(self, found: dict[str, list[Comment]]) -> None:
        for ticket_id, comments in found.items():
            if comments:
                top = max(int(c.id) for c in comments)
                self.dropped[ticket_id] = max(self.dropped.get(ticket_id, -1), top)

    def trim(self, most: int, chars: int) -> None:
        while (self.held_count > most or self.held_chars > chars) and self.held:
            start, group = self.held.pop(0)
            self.held_count -= sum(len(comments) for comments in group.values())
            self.held_chars -= sum(len(c.body) for comments in group.values() for c in comments)
            self.let_go(group)
            if self.released and self.released[-1][0] == start:
                self.released[-1][1].update(group)
            else:
                self.released.append((start, set(group)))
            self.released_ids.update(group)

    def handed(self, tickets: set[str]) -> None:
        """``tickets`` were handed every comment up to their change with a page: what
        this window let go of them, or failed to hand, is no longer left out."""
        self.pending -= tickets
        if self.released_ids & tickets:
            self.released_ids -= tickets
            for _start, group in self.released:
                group -= tickets
            self.released = [(start, group) for start, group in self.released if group]

    def mark(self) -> "_EventsMark | None":
        """What this window lets a later poll skip, or None (not opened, nothing read
        whole, or too many tickets left out).

        Where the tickets left out would be more than ``MARK_PENDING_MAX``, the mark
        ends a second before the events page that would make them so: the tickets
        whose comments were read only after it need not be named (a window read far
        back holds the comments of every ticket changed since, most of them handed
        by earlier polls), and the span up to it still lets the next poll start later."""
        if self.floor is None:
            return None
        through = min([self.covered, *(hole - 1 for hole in self.holes)])
        pending = set(self.pending)
        if len(pending) > MARK_PENDING_MAX:
            return None
        by_page = [*self.released, *((start, group.keys()) for start, group in self.held)]
        for start, tickets in by_page:
            if start > through:
                break
            new = tickets - pending
            if len(pending) + len(new) > MARK_PENDING_MAX:
                # A page shares its first second with the page before (held there too):
                # the mark ends before it.
                through = start - 1
                break
            pending |= new
        if through < self.floor:
            return None
        return _EventsMark(self.floor, through, frozenset(pending))


class _EventsMark:
    """What a poll's events window read, kept in the stored cursor for the next polls.

    Every comment made from ``start`` through ``through`` (unix seconds) was read
    and handed to the engine with a page it committed (the mark is stored with the
    page's cursor, in the same transaction), except the comments of the tickets in
    ``pending``. So a ticket not pending whose unread comments begin no earlier than
    ``start`` (an ask's ``after`` and ``since``) has none made before ``through``: its
    next read may start there. The feed's horizon gives no such start (a ticket that
    keeps changing within the export's left-out minute is missing from every poll
    while its older comments wait), the events stream read whole does."""

    def __init__(self, start: int, through: int, pending: frozenset[str]):
        self.start, self.through, self.pending = start, through, pending

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start, "through": self.through, "pending": sorted(self.pending)}

    @classmethod
    def parse(cls, cursor: str | None) -> "_EventsMark | None":
        """The mark in a stored cursor; a cursor without one, or a wrong one, has none."""
        try:
            value = json.loads(cursor) if cursor else None
        except ValueError:
            return None
        events = value.get("events") if isinstance(value, dict) else None
        if not isinstance(events, dict):
            return None
        start, through, pending = events.get("from"), events.get("through"), events.get("pending")
        numbers = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, through))
        if not numbers or not isinstance(pending, list) or not all(isinstance(t, str) for t in pending):
            return None
        assert isinstance(start, int) and isinstance(through, int)
        return cls(start, through, frozenset(pending)) if through >= start else None

    @classmethod
    def join(cls, old: "_EventsMark | None", new: "_EventsMark | None") -> "_EventsMark | None":
        """One mark for two, where their spans touch or overlap: what each says holds for
        its own span, so together they say it for both, leaving out the tickets either
        left out. A later window's mark alone otherwise (spans apart, or more tickets
        left out than a mark may name), else the one there is.

        Joining is what keeps the mark moving: a window opened at a ticket's older
        change (stored by an earlier run) reads back past the stored mark; without the
        join its shorter span would replace the longer one, and the tickets changed in
        between would pull every later window back again."""
        if old is None or new is None:
            return new if new is not None else old
        if new.start <= old.through + 1 and old.start <= new.through + 1:
            pending = old.pending | new.pending
            if len(pending) <= MARK_PENDING_MAX:
                return cls(min(old.start, new.start), max(old.through, new.through), pending)
        return new if new.through >= old.through else old

    def later_start(self, ask: CommentAsk) -> CommentAsk:
        if ask.after is None or ask.since is None or ask.ticket_id in self.pending or _second(ask.since) < self.start:
            return ask
        # ``through`` was read whole: the ticket's next comment is made after it.
        since = min(max(ask.since, datetime.fromtimestamp(self.through + 1, timezone.utc)), ask.until)
        return dataclasses.replace(ask, since=since)


def _position(cursor: str | None) -> dict[str, Any]:
    """A stored cursor's feed position, without its events mark."""
    value = json.loads(cursor) if cursor else {}
    return {k: v for k, v in value.items() if k != "events"} if isinstance(value, dict) else {}


def _second(when: datetime) -> int:
    """A time as the export's start_time counts it (whole unix seconds)."""
    return int(when.timestamp())


def _comment_id(comment: Comment) -> int:
    return int(comment.id)


def _numeric(value: Any) -> str:
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"not a Zendesk id (digits expected): {value!r}")
    return text


def _follow_up_source(raw: dict) -> str | None:
    """The source ticket a follow-up names: ``via.source.from.ticket_id`` with
    ``rel: follow_up`` (the via object reference), or ``via_followup_source_id``
    where an answer echoes it; None when the answer shows neither."""
    echoed = raw.get("via_followup_source_id")
    if _is_id(echoed) and echoed is not None:
        return str(echoed)
    via = object_or_empty(raw.get("via"))
    source = object_or_empty(via.get("source"))
    origin = object_or_empty(source.get("from"))
    if source.get("rel") == "follow_up" and _is_id(origin.get("ticket_id")) and origin.get("ticket_id") is not None:
        return str(origin["ticket_id"])
    return None


def _detail(connector: str, exc: ApiError) -> str:
    """An error's message without the connector name in front."""
    return str(exc).removeprefix(f"{connector}: ")


def _about(connector: str, what: str, exc: ApiError) -> ApiError:
    """The same error, its message prefixed with what was being done."""
    message = f"{what}: {_detail(connector, exc)}"
    if isinstance(exc, TransientError):
        return TransientError(
            connector, message, status=exc.status, maybe_applied=exc.maybe_applied, retry_after=exc.retry_after
        )
    if isinstance(exc, PayloadError):
        return PayloadError(connector, message, record_id=exc.record_id, payload=exc.payload)
    return type(exc)(connector, message, status=exc.status)


def _index(items: Any) -> dict[int, dict]:
    if not isinstance(items, list):
        return {}
    return {
        item["id"]: item
        for item in items
        if isinstance(item, dict) and item.get("id") is not None and _is_id(item["id"])
    }


def _is_id(value: Any) -> bool:
    """None, or what Zendesk uses as an id (an integer; a string of digits from some proxies)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def _str_id(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _customer(user_id: Any, users: dict[int, dict]) -> Customer | None:
    if user_id is None:
        return None
    user = users.get(user_id, {})
    return Customer(
        id=str(user_id),
        name=_text(user.get("name")),
        email=user.get("email") if isinstance(user.get("email"), str) else None,
        organization_id=_str_id(user.get("organization_id")),
    )


def _user_name(user_id: Any, users: dict[int, dict]) -> str | None:
    """A sideloaded user's name (the assignee's, for the handoff record), if the answer had it."""
    user = users.get(user_id) if isinstance(user_id, int) else None
    name = user.get("name") if isinstance(user, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def _organization(org_id: Any, orgs: dict[int, dict]) -> Organization | None:
    if org_id is None:
        return None
    org = orgs.get(org_id, {})
    # Plan or tier lives in a custom organisation field; "plan" and "tier" are the keys looked for.
    custom = object_or_empty(org.get("organization_fields"))
    tier = next((v for v in (custom.get("plan"), custom.get("tier")) if isinstance(v, str) and v), None)
    return Organization(id=str(org_id), name=_text(org.get("name")), tier=tier)
