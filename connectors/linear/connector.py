"""Linear (GraphQL) as a tracker.

The feed reads ``issues`` filtered on ``updatedAt``. Linear's documented
orders are createdAt (default) and updatedAt, most recent first; the
``sort: [IssueSortInput!]`` argument that could ask for ascending order is
marked [INTERNAL] in the schema, so syncd does not rely on it. With newest
first, the high-water mark can only become the next ``since`` once the last
page is read; until then the stored cursor keeps the old ``since`` and the
page cursor (``after``), so a crash mid-pagination resumes where it stopped.

Linear reports most failures as an ``errors`` array on HTTP 200 or 400;
every response is checked. ``RATELIMITED`` is retried by the one retry layer
in :mod:`syncd.http` (through its :class:`~syncd.http.RateRule`).

Escalation creates issues with an id derived from the write's key (Linear
takes a client-chosen UUID), so the issue can be read back by that id after
a crash, and keeps one comment per slot current with ``commentUpdate``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Literal

import requests
import structlog
from pydantic import Field, SecretStr, model_validator

import connectors.linear.queries as q
from connectors.base import (
    BatchedWrite,
    CheckTargets,
    CommentPresence,
    ConnectorConfig,
    Finding,
    Page,
    Presence,
    Rejected,
    SlotRecord,
    StateName,
    StateRule,
    Tracker,
    WebhookSignature,
    WriteResult,
    find_markers,
    marker_token,
    require_secret,
    utc_now,
)
from syncd.errors import (
    ApiError,
    AuthError,
    ConfigError,
    Gone,
    NotFound,
    PayloadError,
    SyncdError,
    TransientError,
)
from syncd.http import HttpClient, RateHeaders, RateRule, object_or_empty
from syncd.records import Attachment, Issue, IssueRemark, Ref, StateCategory, parse_time
from syncd.writes import AttachTicket, IssueDraft, UpsertComment

AUTH_CODES = frozenset({"AUTHENTICATION_ERROR", "FORBIDDEN", "UNAUTHENTICATED"})
NOT_FOUND_CODES = frozenset({"ENTITY_NOT_FOUND", "NOT_FOUND"})
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE"})
RATELIMITED = "RATELIMITED"
# Operations on one issue named by the caller: "Entity not found: Issue" there means
# the issue is deleted (purged from the trash) or not visible to syncd's account.
ISSUE_OPERATIONS = frozenset(
    {
        "SyncdIssue",
        "SyncdFindMarker",
        "SyncdCommentCreate",
        "SyncdAttachmentCreate",
        "SyncdFindSlot",
        "SyncdWrites",
        "SyncdFindMarkers",
        "SyncdFindSlots",
        "SyncdCommentUpdate",
    }
)
# Ids per existence-check request (issues(filter: {id: {in: [...]}})); Linear
# prices a query by its complexity, which grows with ``first``.
PRESENCE_BATCH = 50
# Comment ids per existence-check request of mirrored comments (a few fields each).
COMMENT_PRESENCE_BATCH = 100
# Comments and attachments per request, as aliased mutations in one document
# (docs/benchmarks.md, "Linear: fifty writes a request"). Linear refuses a
# single query above 10,000 complexity points and budgets 250,000 points and
# 5,000 requests an hour per API key. Fifty aliased attachmentCreate or
# commentCreate cost about 115 points (about 2,000 when they write fifty issues, each
# read back for the next poll: q.batch_writes); the look-up of fifty interrupted writes'
# markers (q.find_markers: each issue's marker comment and 50 attachments)
# about 3,200, the larger of the two and a third of the cap, so a batch is
# always looked for again in one request. Larger batches would save few
# requests (20 for 1,000 links instead of 10) and lose more when one write
# is refused: the writes after it in the same document are not run.
WRITE_BATCH = 50
TEAMS_PAGE = 100
# The most (issue, updatedAt) pairs the cursor keeps to leave out of the next poll's overlap
# (FeedCursor.seen), and the most issues syncd's writes read back for the next poll (the echo);
# beyond this many the overlap is read again whole, as before. A thousand covers the echo of a
# first sync of 10,000 links (1,000 issues): the filter then holds one clause per instant of
# the writes (a few tens of kilobytes of variables), and the cursor the pairs.
SEEN_MAX = 1_000
# Issues whose kept slot comment (or its absence) the feed told, remembered per process;
# past this many the oldest are forgotten (their next slot write looks first, as before).
FEED_SLOTS_MAX = 20_000

log = structlog.get_logger("syncd.connectors.linear")

# Linear's priorities: 1 urgent, 2 high, 3 medium, 4 low (0 is "no priority").
PRIORITIES = {"sev1": 1, "urgent": 1, "sev2": 2, "high": 2, "sev3": 3, "normal": 3, "medium": 3, "sev4": 4, "low": 4}
SLOT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")  # the same slot names as the GitHub connector
LABEL_MISS_TTL = 600.0  # seconds before a label name that was not found is looked up again


def created_issue_id(key: str) -> str:
    """The id syncd gives the issue it creates for ``key``: a UUID v4 derived from the key.

    Linear accepts a client-chosen id on ``issueCreate`` ("The identifier in
    UUID v4 format"), so the key alone says where the issue is, and a second
    create with the same key is refused instead of making a duplicate."""
    digest = hashlib.sha256(f"syncd/linear/issue/{key}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def linear_priority(word: str | None) -> int | None:
    """The ticket's severity word as Linear's priority number; None leaves it unset."""
    return PRIORITIES.get(word.strip().lower()) if isinstance(word, str) else None


KEY_MARKER_RE = re.compile(r"<!-- syncd:[0-9a-f]{20} -->")


def slot_marker(slot: str) -> str:
    return f"<!-- syncd:{slot} -->"


class LinearConfig(ConnectorConfig):
    kind: Literal["linear"]
    url: str = Field("https://api.linear.app", description="API base; GraphQL is served at {url}/graphql.")
    api_key: SecretStr | None = Field(None, description="Personal API key (sent as it is in Authorization).")
    api_key_file: str | None = Field(None, description="A file holding the personal API key.")
    oauth_token: SecretStr | None = Field(None, description="OAuth access token (sent as Bearer).")
    teams: list[str] = Field(
        default_factory=list,
        description="Team keys to follow (ENG); empty follows every team. "
        "Also how bare identifiers (ENG-123) are recognised in ticket text.",
    )
    workspace: str | None = Field(
        None, description="URL slug of the workspace (linear.app/<workspace>/issue/...); None accepts any workspace."
    )
    page_size: int = Field(50, ge=1, le=250)
    backfill_days: int = Field(30, ge=0, description="How far back the first poll reads.")
    overlap_seconds: float = Field(5, ge=0, description="How far each poll re-reads before the last high-water mark.")

    @model_validator(mode="after")
    def _one_credential(self) -> "LinearConfig":
        if self.api_key is None and self.api_key_file is None and self.oauth_token is None:
            raise ValueError(
                "no credentials: set api_key (environment variable SYNCD_CONNECTORS__<NAME>__API_KEY), "
                "api_key_file, or oauth_token"
            )
        return self

    @model_validator(mode="after")
    def _team_keys(self) -> "LinearConfig":
        bad = [t for t in self.teams if not re.fullmatch(r"[A-Za-z0-9_]+", t)]
        if bad:
            raise ValueError(f"teams: {', '.join(map(repr, bad))} is not a team key (letters and digits, e.g. ENG)")
        return self


@dataclass(frozen=True)
class FeedCursor:
    """What the feed stores: where the window starts, and mid-pagination the page cursor and high-water mark."""

    since: datetime
    after: str | None = None
    hwm: datetime | None = None
    # The comment feed's window, page cursor and high-water mark (only while comments are read).
    c_since: datetime | None = None
    c_after: str | None = None
    c_hwm: datetime | None = None
    # The (issue id, updatedAt) pairs already delivered inside the window's overlap: the
    # next poll's filter leaves exactly these out, so the overlap re-reads no change twice.
    seen: tuple[tuple[str, str], ...] = ()

    def dump(self) -> str:
        out: dict[str, Any] = {"since": iso(self.since)}
        if self.seen:
            out["seen"] = [list(pair) for pair in sorted(self.seen)]
        for name in ("after", "c_after"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("hwm", "c_since", "c_hwm"):
            if getattr(self, name) is not None:
                out[name] = iso(getattr(self, name))
        return json.dumps(out, sort_keys=True)

    @classmethod
    def load(cls, text: str, connector: str) -> "FeedCursor":
        try:
            data = json.loads(text)
            since = parse_time(data["since"])
            if since is None:
                raise ValueError("empty since")
            return cls(
                since,
                data.get("after"),
                parse_time(data.get("hwm")),
                parse_time(data.get("c_since")),
                data.get("c_after"),
                parse_time(data.get("c_hwm")),
                tuple(_pair(p) for p in data.get("seen") or ()),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                [
                    f"connector {connector}: stored cursor {text[:80]!r} is unreadable "
                    "(want JSON with since/after/hwm); reset this connector's cursor to read "
                    "again from the backfill window"
                ]
            ) from None


def _pair(value: Any) -> tuple[str, str]:
    """A stored (issue id, updatedAt) pair of the cursor's ``seen``."""
    ident, stamp = value
    if not isinstance(ident, str) or not isinstance(stamp, str) or parse_time(stamp) is None:
        raise ValueError("seen: want [id, time] pairs")
    return ident, stamp


def iso(dt: datetime) -> str:
    """UTC ISO-8601 with milliseconds, as Linear writes its own timestamps."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Reject(Exception):
    """Internal: a node that cannot become an Issue."""


def graphql_errors(body: Any) -> list[dict]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def error_code(error: dict) -> str | None:
    ext = error.get("extensions")
    return ext.get("code") if isinstance(ext, dict) else None


def is_rate_limited(response: requests.Response) -> bool:
    """Whether a Linear response is a RATELIMITED GraphQL error (whatever its HTTP status)."""
    if response.status_code not in (200, 400, 429):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return any(error_code(e) == RATELIMITED for e in graphql_errors(body))


class LinearRule(StateRule):
    """A ``[states.<name>]`` rule for Linear: the workflow state's type and name."""

    type: Literal["triage", "backlog", "unstarted", "started", "completed", "canceled"] | None = None
    name: StateName | None = None


class LinearConnector(Tracker):
    kind = "linear"
    display_name = "Linear"
    # Linear signs each webhook: hex HMAC-SHA256 of the body, which carries webhookTimestamp (Unix ms);
    # Linear asks receivers to refuse a delivery more than a minute away from their clock.
    webhook = WebhookSignature("Linear-Signature", timestamp_field="webhookTimestamp", max_age=60.0)
    fake = "connectors.linear.fake:LinearFake"
    state_rule_model = LinearRule
    team_pattern = (r"^[A-Za-z0-9]{1,10}$", 'a Linear team key such as "ENG"')
    text_format = "markdown"
    presence_batch = PRESENCE_BATCH
    comment_presence_batch = COMMENT_PRESENCE_BATCH  # the comment feed does not list deleted comments
    write_batch = WRITE_BATCH
    batches_slots = True  # a slot comment's create or edit rides in SyncdWrites too
    comment_feed = True  # SyncdFeed: the issue and comment feeds in one request when idle
    config_model = LinearConfig
    config: LinearConfig

    def __init__(
        self,
        name: str,
        config: LinearConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        kept_slots: tuple[str, ...] = (),
    ):
        # Per-process caches of what creating issues and keeping comments need.
        self._team_ids: dict[str, str] = {}  # team key (upper case) -> team id
        self._labels: dict[tuple[str, str], tuple[str | None, float]] = {}  # (team, name) -> (id, looked up at)
        self._slot_comments: dict[tuple[str, str], tuple[str, str]] = {}  # (issue ref, slot) -> (comment, issue id)
        # What the feed read of the kept slot's comment: issue id -> syncd's comment there, or None (none).
        self._feed_slots: dict[str, str | None] = {}
        # The echo of syncd's batched writes: issue id -> the issue as the last write's answer
        # read it, for the next poll of this process (see poll); at most SEEN_MAX.
        self._echoes: dict[str, dict] = {}
        # With teams = [] (every team): the team keys seen, from the team list read
        # once per process (first poll or check) and from every issue the feed shows.
        self._seen_teams: set[str] = set()
        self._teams_listed = False
        super().__init__(name, config, sleep=sleep, clock=clock, kept_slots=kept_slots)

    # -- session ----------------------------------------------------------------

    def make_http(self) -> HttpClient:
        c = self.config
        if c.oauth_token is not None:
            authorization = f"Bearer {c.oauth_token.get_secret_value()}"
        else:
            api_key = require_secret(
                self.name,
                "api_key",
                c.api_key,
                c.api_key_file,
                "give it a personal API key from Linear's settings",
            )
            authorization = api_key.get_secret_value()
        return HttpClient(
            self.name,
            c.url,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
            rate_headers=RateHeaders(
                remaining="X-RateLimit-Requests-Remaining",
                reset="X-RateLimit-Requests-Reset",
                limit="X-RateLimit-Requests-Limit",
            ),
            rate_rule=RateRule(matches=is_rate_limited),
            **self.http_options(),
        )

    def _graphql(
        self,
        operation: str,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        mutation: bool = False,
        idempotent: bool | None = None,
    ) -> dict:
        """Send one named operation; return its ``data`` or raise what its ``errors`` say.

        ``idempotent`` overrides the default (queries only) for a mutation
        that is safe to send twice: an update to a fixed text, or a create
        with an id syncd chose (a second one is refused, not applied)."""
        body = self.http.request_json(
            "POST",
            "graphql",
            json={"query": document, "variables": variables or {}, "operationName": operation},
            idempotent=(not mutation) if idempotent is None else idempotent,
            expect=(400,),
            endpoint=f"POST /graphql {operation}",
        )
        errors = graphql_errors(body)
        if errors:
            self._raise_for(operation, errors, mutation=mutation)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise PayloadError(self.name, f"{operation}: response has no data object", payload=body)
        return body["data"]

    def _raise_for(self, operation: str, errors: list[dict], *, mutation: bool) -> None:
        first = errors[0]
        code = error_code(first) or ""
        message = str(first.get("message") or "").replace("\n", " ")[:200]
        text = f"{operation}: {code or 'error'}: {message}"
        codes = {error_code(e) for e in errors}
        if codes & AUTH_CODES:
            raise AuthError(self.name, text + " (check the API key or OAuth token and its scopes)")
        if codes & NOT_FOUND_CODES or message.lower().startswith("entity not found"):
            if operation in ISSUE_OPERATIONS and message.lower().startswith("entity not found: issue"):
                raise Gone(self.name, text + " (deleted, or not visible to this account)")
            raise NotFound(self.name, text)
        if RATELIMITED in codes:
            raise TransientError(self.name, text, maybe_applied=False)
        if codes & TRANSIENT_CODES:
            raise TransientError(self.name, text, maybe_applied=mutation)
        raise ApiError(self.name, text)

    # -- reads --------------------------------------------------------------------

    def check(self) -> str:
        data = self._graphql("SyncdViewer", q.VIEWER)
        viewer = data.get("viewer")
        if not isinstance(viewer, dict):
            raise PayloadError(self.name, "SyncdViewer: no viewer in the response", payload=data)
        return f"{viewer.get('name') or viewer.get('id')} <{viewer.get('email') or 'no email'}>"

    def list_teams(self) -> dict[str, str]:
        """Every team the API key can see: key -> name (a page of 100 per request)."""
        teams: dict[str, str] = {}
        after: str | None = None
        while True:
            data = self._graphql("SyncdTeams", q.TEAMS, {"first": TEAMS_PAGE, "after": after})
            conn = data.get("teams")
            nodes = conn.get("nodes") if isinstance(conn, dict) else None
            if not isinstance(nodes, list):
                raise PayloadError(self.name, "SyncdTeams: expected teams.nodes to be a list", payload=data)
            for node in nodes:
                if isinstance(node, dict) and isinstance(node.get("key"), str):
                    teams[node["key"]] = _str(node.get("name")) or node["key"]
            page = object_or_empty(conn.get("pageInfo")) if isinstance(conn, dict) else {}
            after = page.get("endCursor") if page.get("hasNextPage") else None
            if not after:
                break
        self._seen_teams.update(teams)
        self._teams_listed = True
        return teams

    def check_objects(self, targets: CheckTargets) -> list[Finding]:
        """The configured team keys and every route's team exist in the workspace,
        and every route's team is one this connector follows."""
        teams = self.list_teams()
        known = ", ".join(sorted(teams)) or "none"
        key = f"connectors.{self.name}.teams"
        findings = []
        for team in self.config.teams:
            if team not in teams:
                findings.append(Finding("error", key, _no_team(team, teams, known)))
        if not self.config.teams:
            findings.append(
                Finding(
                    "note",
                    key,
                    f"empty: every team is followed; bare keys of the {len(teams)} team(s) this API key sees "
                    f"({known}) and of teams the feed shows later are recognised in tickets",
                )
            )
        for route in targets.routes:
            if route.team not in teams:
                findings.append(Finding("error", route.where, _no_team(route.team, teams, known)))
            elif self.config.teams and route.team not in self.config.teams:
                findings.append(
                    Finding(
                        "error",
                        route.where,
                        f"team {route.team} is not followed by connector {self.name} "
                        f"({key} = {json.dumps(list(self.config.teams))}): the issues of this route are never "
                        f"synced back; add {route.team} to {key} or route to a followed team",
                    )
                )
        return findings

    def learn_keys(self) -> None:
        """With teams = [] (every team): list the workspace's teams once, so that their
        bare keys are recognised before any ticket is read."""
        if not self.config.teams and not self._teams_listed:
            self.list_teams()

    def poll(self, cursor: str | None) -> Iterator[Page]:
        """The issue feed, and with ``read_comments`` the comment feed.

        Reading comments, a poll's first request is ``SyncdFeed``: the first page of
        both feeds as two root fields of one document, so an idle cycle is one
        request. Whichever feed has more pages is then followed alone
        (``SyncdIssues``, then ``SyncdComments``)."""
        self.learn_keys()
        if cursor:
            state = FeedCursor.load(cursor, self.name)
        else:
            start = self.clock()
            state = FeedCursor(start - timedelta(days=self.config.backfill_days))
        polled_at = self.clock()
        seen: set[tuple[str, str]] = set()
        echoes = self._take_echoes(state)
        if echoes:
            # An echo's pair replaces its issue's older pair (that one no longer matches anything).
            stamps = {(ident, iso(when)) for ident, node in echoes.items() if (when := _node_time(node))}
            older = {pair for pair in state.seen if pair[0] not in echoes}
            state = dataclasses.replace(state, seen=tuple(sorted(older | stamps)))
        # A stored cursor with only the comment feed mid-pagination: the issue feed closed already.
        issues_more = not (self.read_comments and state.after is None and state.c_after is not None)
        comments_more = self.read_comments
        if self.read_comments and state.after is None and state.c_after is None:
            c_since = state.c_since or (polled_at - self._overlap)
            variables = {
                "filter": self._feed_filter(state.since, state.seen),
                "first": self.config.page_size,
                "after": None,
                "cFilter": self._comment_filter(c_since),
                "cFirst": self.config.page_size,
                "cAfter": None,
                **self._slot_variables(),
            }
            data = self._graphql("SyncdFeed", q.FEED, variables)
            records, rejected, state, issues_more = self._issue_page(state, data, seen, polled_at, echoes)
            echoes = {}  # delivered with the first page, whose cursor leaves their pairs out
            remarks, state, comments_more = self._comment_page(state, data, polled_at, "SyncdFeed")
            done = not issues_more and not comments_more
            yield Page(records, state.dump(), done=done, rejected=rejected, remarks=remarks)
        while issues_more:
            variables = {
                "filter": self._feed_filter(state.since, state.seen),
                "first": self.config.page_size,
                "after": state.after,
                **self._slot_variables(),
            }
            data = self._graphql("SyncdIssues", q.ISSUES, variables)
            records, rejected, state, issues_more = self._issue_page(state, data, seen, polled_at, echoes)
            echoes = {}
            done = not issues_more and not comments_more
            yield Page(records, state.dump(), done=done, rejected=rejected)
        while comments_more:
            c_since = state.c_since or (polled_at - self._overlap)
            flt = self._comment_filter(c_since)
            variables = {"filter": flt, "first": self.config.page_size, "after": state.c_after}
            data = self._graphql("SyncdComments", q.COMMENTS, variables)
            remarks, state, comments_more = self._comment_page(state, data, polled_at, "SyncdComments")
            yield Page([], state.dump(), done=not comments_more, remarks=remarks)

    @property
    def _overlap(self) -> timedelta:
        return timedelta(seconds=self.config.overlap_seconds)

    @property
    def _feed_slot(self) -> str | None:
        """The slot whose comment the feed reads with each issue: the first kept slot (the demand comment)."""
        return self.kept_slots[0] if self.kept_slots and SLOT_RE.match(self.kept_slots[0]) else None

    def _slot_variables(self) -> dict[str, Any]:
        slot = self._feed_slot
        if slot is None:
            return {}  # withSlots defaults to false: the feed as it was
        return {"withSlots": True, "slots": _own_slot_filter(slot)}

    def _note_feed_slot(self, node: Any) -> None:
        """Remember what the feed read of an issue's kept slot comment: its id, or that there is none."""
        slot = self._feed_slot
        if slot is None or not isinstance(node, dict) or not isinstance(node.get("id"), str):
            return
        conn = node.get("slots")
        nodes = conn.get("nodes") if isinstance(conn, dict) else None
        if not isinstance(nodes, list):
            return  # not read: nothing is known
        mine = [c for c in nodes if isinstance(c, dict) and isinstance(c.get("id"), str)]
        ident = node["id"]
        if not mine and (ident, slot) in self._slot_comments:
            # syncd wrote it in this process after that read began: its own answer is the later word
            # (and if someone deleted it since, the edit finds that out and looks again).
            return
        self._feed_slots.pop(ident, None)
        self._feed_slots[ident] = mine[0]["id"] if mine else None
        while len(self._feed_slots) > FEED_SLOTS_MAX:
            del self._feed_slots[next(iter(self._feed_slots))]

    def _take_echoes(self, state: FeedCursor) -> dict[str, dict]:
        """The issues syncd's batched writes read since the last poll, for this poll to deliver
        instead of reading them again: only when the poll starts afresh (the filter of a poll
        resumed mid-pagination must not change) and when they fit beside the cursor's pairs."""
        if not self._echoes or state.after is not None or state.c_after is not None:
            return {}
        echoes, self._echoes = self._echoes, {}
        if len(echoes) + sum(1 for ident, _ in state.seen if ident not in echoes) > SEEN_MAX:
            return {}  # read again by the feed, as before
        return echoes

    def _issue_page(
        self,
        state: FeedCursor,
        data: dict,
        seen: set[tuple[str, str]],
        polled_at: datetime,
        echoes: dict[str, dict] | None = None,
    ) -> tuple[list[Issue], list[Rejected], FeedCursor, bool]:
        """One page of the issue feed: its issues, the cursor after it, and whether more pages follow.

        ``echoes`` (the first page only): the issues as syncd's writes since the last poll left
        them, whose (id, updatedAt) pairs this poll's filter leaves out; each is delivered with
        this page, whose cursor is the first to leave them out (stored together, so a poll
        stopped after it never loses them), ahead of the page's own issues. One the page read
        again (it changed after the write) is not: the feed's read is the later one; one a later
        page reads again is delivered twice, the older first."""
        nodes, has_next, end_cursor = self._connection(data)
        hwm = state.hwm
        records: list[Issue] = []
        rejected: list[Rejected] = []
        on_page = {node.get("id") for node in nodes if isinstance(node, dict)}
        for echoed, node in (echoes or {}).items():
            if echoed in on_page:
                continue
            try:
                issue = self.normalise(node)
                if self.follows(issue):  # what the feed's team filter would have shown
                    records.append(issue)
            except _Reject as exc:
                rejected.append(Rejected(_node_label(node), str(exc), node))
        delivered = set(state.seen)
        for node in nodes:
            updated = _node_time(node)
            if updated is not None and (hwm is None or updated > hwm):
                hwm = updated
            self._note_feed_slot(node)
            ident = node.get("id") if isinstance(node, dict) else None
            if ident and updated is not None:
                if (ident, iso(updated)) in seen or (ident, iso(updated)) in delivered:
                    continue
                seen.add((ident, iso(updated)))
            try:
                records.append(self.normalise(node))
            except _Reject as exc:
                rejected.append(Rejected(_node_label(node), str(exc), node))
        if has_next:
            return records, rejected, dataclasses.replace(state, after=end_cursor, hwm=hwm), True
        # The overlap re-reads what changed just before this poll, in case
        # the feed showed it late; once a poll is quiet for longer than the
        # overlap, the window closes on the high-water mark, so an idle feed
        # does not re-read a burst of old changes forever.
        # What this poll and the ones before it delivered inside the next window is left out of
        # the next poll's filter (pair by pair: the same issue changed again, or another issue
        # changed at the same instant, is still read); past SEEN_MAX pairs the window is re-read
        # whole instead, as a filter that long would cost more than the page it saves.
        since = state.since
        for _, stamp in state.seen:  # delivered before and left out of this poll: still the latest known
            stamped = parse_time(stamp)
            if stamped is not None and (hwm is None or stamped > hwm):
                hwm = stamped
        next_since = max(since, min(hwm, polled_at - self._overlap)) if hwm is not None else since
        # Only a pair stamped strictly before this poll began is left out: a clock that has not
        # moved since (a frozen clock in tests, a busy second) could stamp a later change of the
        # same issue with the same instant, which the pair would then hide.
        inside = tuple(sorted(p for p in delivered | seen if next_since < (parse_time(p[1]) or next_since) < polled_at))
        kept = inside if len(inside) <= SEEN_MAX else ()
        return records, rejected, dataclasses.replace(state, since=next_since, after=None, hwm=None, seen=kept), False

    # -- the comment feed (the conversation mirror) ---------------------------------------

    def _comment_filter(self, since: datetime) -> dict[str, Any]:
        flt: dict[str, Any] = {"updatedAt": {"gt": iso(since)}}
        if self.config.teams:
            flt["issue"] = {"team": {"key": {"in": list(self.config.teams)}}}
        return flt

    def _comment_page(
        self, state: FeedCursor, data: dict, polled_at: datetime, operation: str
    ) -> tuple[list[IssueRemark], FeedCursor, bool]:
        """One page of ``comments(filter: {updatedAt: {gt: since}})``, oldest change first.

        The first read starts now (earlier comments are not replayed); the window
        closes on the newest change read, with the feed's overlap."""
        since = state.c_since or (polled_at - self._overlap)
        hwm = state.c_hwm
        conn = data.get("comments")
        if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
            raise PayloadError(self.name, f"{operation}: expected comments.nodes to be a list", payload=data)
        info = object_or_empty(conn.get("pageInfo"))
        remarks = []
        for node in conn["nodes"]:
            remark = self._remark(node)
            if remark is None:
                continue
            if hwm is None or remark.updated_at > hwm:
                hwm = remark.updated_at
            remarks.append(remark)
        if info.get("hasNextPage") is True and isinstance(info.get("endCursor"), str):
            return remarks, dataclasses.replace(state, c_since=since, c_after=info["endCursor"], c_hwm=hwm), True
        next_since = max(since, min(hwm, polled_at - self._overlap)) if hwm is not None else since
        return remarks, dataclasses.replace(state, c_since=next_since, c_after=None, c_hwm=None), False

    def _remark(self, node: Any) -> IssueRemark | None:
        try:
            issue = node["issue"]
            created, updated = parse_time(node["createdAt"]), parse_time(node["updatedAt"])
            if not isinstance(issue, dict) or created is None or updated is None:
                return None  # a comment on a project or a document: not an issue's
            user = node.get("user")
            body = str(node.get("body") or "")
            return IssueRemark(
                id=str(node["id"]),
                issue_key=str(issue.get("identifier") or ""),
                issue_id=str(issue["id"]),
                body=KEY_MARKER_RE.sub("", body).strip(),
                created_at=created,
                updated_at=updated,
                author_id=str(user["id"]) if isinstance(user, dict) and user.get("id") else None,
                author_name=(str(user.get("name") or "") or None) if isinstance(user, dict) else None,
                url=str(node.get("url") or ""),
                bot=not isinstance(user, dict),  # written by an integration, not a person
                markers=find_markers(body),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            log.warning("skipping a malformed comment in the comment feed", connector=self.name)
            return None

    def _feed_filter(self, since: datetime, seen: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
        """``updatedAt > since``, less the (id, updatedAt) pairs of ``seen``: one clause per
        instant, ``updatedAt != instant OR id not in (the ids delivered at that instant)``."""
        flt: dict[str, Any] = {"updatedAt": {"gt": iso(since)}}
        if seen:
            at: dict[str, list[str]] = {}
            for ident, stamp in seen:
                at.setdefault(stamp, []).append(ident)
            flt["and"] = [
                {"or": [{"updatedAt": {"neq": stamp}}, {"id": {"nin": sorted(ids)}}]}
                for stamp, ids in sorted(at.items())
            ]
        if self.config.teams:
            flt["team"] = {"key": {"in": list(self.config.teams)}}
        return flt

    def _connection(self, data: dict) -> tuple[list, bool, str | None]:
        conn = data.get("issues")
        if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
            raise PayloadError(self.name, "SyncdIssues: expected issues.nodes to be a list", payload=data)
        info = conn.get("pageInfo")
        if not isinstance(info, dict) or not isinstance(info.get("hasNextPage"), bool):
            raise PayloadError(self.name, "SyncdIssues: expected issues.pageInfo.hasNextPage", payload=data)
        end_cursor = info.get("endCursor")
        if info["hasNextPage"] and not isinstance(end_cursor, str):
            raise PayloadError(self.name, "SyncdIssues: hasNextPage without an endCursor", payload=data)
        return conn["nodes"], info["hasNextPage"], end_cursor

    def get_issue(self, ref: str) -> Issue:
        data = self._graphql("SyncdIssue", q.ISSUE, {"id": ref})
        node = data.get("issue")
        if node is None:
            raise Gone(self.name, f"SyncdIssue: no issue {ref} (deleted, or not visible to this account)")
        if isinstance(node, dict) and node.get("trashed") is True:
            raise Gone(self.name, f"SyncdIssue: {node.get('identifier') or ref} is in Linear's trash (deleted)")
        try:
            return self.normalise(node)
        except _Reject as exc:
            raise PayloadError(self.name, f"SyncdIssue: issue {ref}: {exc}", record_id=ref, payload=node) from None

    def presence(self, issue_ids: list[str], validators: dict[str, str]) -> Presence:
        """``issues(filter: {id: {in: [...]}}, includeArchived: true)``, 50 ids a request.
        Absent (purged, or not visible) or in the trash: gone."""
        out = Presence()
        for start in range(0, len(issue_ids), PRESENCE_BATCH):
            chunk = issue_ids[start : start + PRESENCE_BATCH]
            data = self._graphql("SyncdPresence", q.PRESENCE, {"filter": {"id": {"in": chunk}}, "first": len(chunk)})
            out.requests += 1
            nodes, _, _ = self._connection(data)
            trashed: set[str] = set()
            for node in nodes:
                if isinstance(node, dict) and node.get("trashed") is True and isinstance(node.get("id"), str):
                    trashed.add(node["id"])
                    continue
                try:
                    issue = self.normalise(node)
                except _Reject:
                    continue
                out.found[issue.ref.id] = issue
            for ident in chunk:
                if ident in trashed:
                    out.gone[ident] = "in Linear's trash (deleted)"
                elif ident not in out.found and not any(isinstance(n, dict) and n.get("id") == ident for n in nodes):
                    out.gone[ident] = "Linear no longer returns it (deleted, or not visible to this account)"
        return out

    def comments_present(self, comments: dict[str, str], validators: dict[str, str]) -> CommentPresence:
        """``comments(filter: {id: {in: [...]}}, includeArchived: true)``, up to 50 ids a request.
        Missing, or archived while its issue is not (Linear archives an issue's comments
        with it): deleted."""
        out = CommentPresence()
        ids = list(comments)
        for start in range(0, len(ids), COMMENT_PRESENCE_BATCH):
            chunk = ids[start : start + COMMENT_PRESENCE_BATCH]
            data = self._graphql(
                "SyncdCommentsPresent", q.COMMENTS_PRESENT, {"filter": {"id": {"in": chunk}}, "first": len(chunk)}
            )
            out.requests += 1
            conn = data.get("comments")
            if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
                raise PayloadError(self.name, "SyncdCommentsPresent: expected comments.nodes", payload=data)
            for node in conn["nodes"]:
                if not isinstance(node, dict) or node.get("id") not in chunk:
                    continue
                issue = node.get("issue")
                alone = node.get("archivedAt") and not (isinstance(issue, dict) and issue.get("archivedAt"))
                (out.gone if alone else out.present).add(node["id"])
            out.gone.update(i for i in chunk if i not in out.present)
        return out

    def follows(self, issue: Issue) -> bool:
        return not self.config.teams or issue.team in self.config.teams

    def normalise(self, node: Any) -> Issue:
        """One ``Issue`` node → :class:`Issue`; raises _Reject naming every field that is missing."""
        if not isinstance(node, dict):
            raise _Reject(f"issue node is {type(node).__name__}, not an object")
        missing = [k for k in ("id", "identifier", "url") if not isinstance(node.get(k), str) or not node[k]]
        updated = _node_time(node)
        if updated is None:
            missing.append("updatedAt")
        state = object_or_empty(node.get("state"))
        try:
            category = StateCategory(state.get("type"))
        except ValueError:
            category = None
            missing.append(f"state.type (got {state.get('type')!r})" if state.get("type") else "state.type")
        if missing or category is None or updated is None:  # either None is in missing
            raise _Reject("missing or invalid " + ", ".join(missing))
        assignee = object_or_empty(node.get("assignee"))
        team = object_or_empty(node.get("team"))
        if isinstance(team.get("key"), str) and team["key"]:
            self._seen_teams.add(team["key"])
        state_name = _str(state.get("name")) or category.value
        return Issue(
            ref=Ref(self.name, node["id"]),
            key=node["identifier"],
            url=node["url"],
            title=_str(node.get("title")) or "",
            state=category,
            state_name=state_name,
            native={"type": category.value, "name": state_name},
            updated_at=updated,
            assignee=_str(assignee.get("name")) or _str(assignee.get("displayName")) or _str(assignee.get("email")),
            team=_str(team.get("key")),
            attachments=_attachments(node),
            public=False,
        )

    # -- links ----------------------------------------------------------------------

    def native_of_stored(self, issue: Issue) -> dict[str, str | None]:
        return {"type": issue.state.value, "name": issue.state_name}

    def key_prefixes(self) -> frozenset[str] | None:
        """The followed team keys; None when every team is followed (``teams = []``)."""
        return frozenset(t.upper() for t in self.config.teams) or None

    def link_patterns(self) -> list[str]:
        workspace = re.escape(self.config.workspace) if self.config.workspace else r"[\w-]+"
        patterns = [rf"https?://linear\.app/{workspace}/issue/(?P<ref>[A-Za-z0-9_]+-\d+)(?![\w-])(?:/[\w%.~-]*)?"]
        # The configured teams; with none (every team), those listed or seen so far.
        teams = self.config.teams or sorted(self._seen_teams)
        if teams:
            keys = "|".join(re.escape(t) for t in teams)
            patterns.append(rf"(?<![\w/-])(?P<ref>(?:{keys})-\d+)(?![\w-])")
        return patterns

    # -- writes ---------------------------------------------------------------------

    @staticmethod
    def _comment_text(body: str, key: str) -> str:
        return f"{body.rstrip()}\n\n<!-- {marker_token(key)} -->"

    @staticmethod
    def _attachment_input(issue_id: str, write: AttachTicket, key: str) -> dict[str, Any]:
        return {
            "issueId": issue_id,
            "url": write.url,
            "title": write.title,
            "subtitle": write.subtitle,
            "metadata": {"syncd": key},
        }

    def add_comment(self, issue_id: str, body: str, key: str, *, customer_data: bool = False) -> WriteResult:
        """``customer_data``: the body names a customer; a team or project here is never public."""
        text = self._comment_text(body, key)
        data = self._graphql(
            "SyncdCommentCreate", q.COMMENT_CREATE, {"input": {"issueId": issue_id, "body": text}}, mutation=True
        )
        return self._write_result("SyncdCommentCreate", data.get("commentCreate"), "comment")

    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        attachment = {"issueId": issue_id, "url": url, "title": title, "subtitle": subtitle, "metadata": {"syncd": key}}
        data = self._graphql("SyncdAttachmentCreate", q.ATTACHMENT_CREATE, {"input": attachment}, mutation=True)
        return self._write_result("SyncdAttachmentCreate", data.get("attachmentCreate"), "attachment")

    def send_batch(self, writes: list[BatchedWrite]) -> list[WriteResult | Exception]:
        """Up to :data:`WRITE_BATCH` comments, attachments and slot comments as aliased
        mutations in one document.

        A slot comment (:class:`UpsertComment`) is a ``commentCreate`` or a
        ``commentUpdate`` as :meth:`_slot_plan` says, without a look; those that
        nothing vouches for are looked for first, all in one SyncdFindSlots.
        Linear runs a document's mutations in order; one that fails (a deleted
        issue) makes the whole ``data`` null and the ones after it are not run:
        the failed one gets its error, the others (landed or not, the answer does
        not say) a TransientError(maybe_applied), so that their markers are
        looked for before they are sent again. An edit refused because its
        comment is gone (someone deleted it) is made again alone: looked for,
        and created."""
        if not writes:
            return []
        if len(writes) > WRITE_BATCH:
            raise ValueError(f"at most {WRITE_BATCH} writes a batch, not {len(writes)}")
        results: list[WriteResult | Exception | None] = [None] * len(writes)
        plans: dict[int, tuple[str, str | None]] = {}
        for n, w in enumerate(writes):
            if isinstance(w.write, UpsertComment):
                if not SLOT_RE.match(w.write.slot):
                    results[n] = ValueError(f"slot {w.write.slot!r}: use lowercase letters, digits, - and _")
                    continue
                plans[n] = self._slot_plan(w.issue_id, w.write.slot, w.slot)
        look = [n for n, (how, _) in plans.items() if how == "look"]
        if look:
            for n, found in zip(look, self._find_slots([writes[n] for n in look])):
                if isinstance(found, Exception):
                    results[n] = found
                    del plans[n]
                else:
                    plans[n] = ("update", found) if found else ("create", None)
        sent: list[int] = []
        inputs: list[tuple[str, dict[str, Any]]] = []
        for n, w in enumerate(writes):
            if results[n] is not None:
                continue
            sent.append(n)
            if isinstance(w.write, AttachTicket):
                inputs.append(("attachment", self._attachment_input(w.issue_id, w.write, w.key)))
            elif isinstance(w.write, UpsertComment):
                how, comment_id = plans[n]
                text = self._slot_text(w.write.body, w.key, w.write.slot)
                if how == "update":
                    inputs.append(("update", {"id": comment_id, "input": {"body": text}}))
                else:
                    inputs.append(("comment", {"issueId": w.issue_id, "body": text}))
            else:
                inputs.append(("comment", {"issueId": w.issue_id, "body": self._comment_text(w.write.body, w.key)}))
        last: dict[str, int] = {}  # the last write to each issue in the document reads it back
        for i, n in enumerate(sent):
            last[writes[n].issue_id] = i
        room = SEEN_MAX - len(self._echoes)
        echo = frozenset(sorted(last.values())[:room]) if room > 0 else frozenset()
        for n, result in zip(sent, self._send_writes(inputs, echo)):
            w = writes[n]
            if isinstance(w.write, UpsertComment) and isinstance(result, WriteResult):
                result = self._slot_written(w.issue_id, w.write.slot, result)
            elif isinstance(w.write, UpsertComment) and isinstance(result, NotFound) and plans[n][0] == "update":
                comment_id = plans[n][1]
                assert comment_id is not None
                self._forget_slot(w.issue_id, w.write.slot, comment_id)
                try:
                    result = self.upsert_comment(w.issue_id, w.write.body, w.key, w.write.slot)
                except SyncdError as exc:
                    result = exc
            results[n] = result
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _send_writes(
        self, inputs: list[tuple[str, dict[str, Any]]], echo: frozenset[int] = frozenset()
    ) -> list[WriteResult | Exception]:
        """One SyncdWrites document of ``inputs`` (kind, input); one result per input, in order.
        The writes at the positions in ``echo`` read their issue back (kept for the next poll)."""
        if not inputs:
            return []
        document = q.batch_writes([kind for kind, _ in inputs], echo)
        variables: dict[str, Any] = {}
        for n, (kind, value) in enumerate(inputs):
            if kind == "update":
                variables[f"c{n}"] = value["id"]
                variables[f"i{n}"] = value["input"]
            else:
                variables[f"i{n}"] = value
        body = self.http.request_json(
            "POST",
            "graphql",
            json={"query": document, "variables": variables, "operationName": "SyncdWrites"},
            idempotent=False,
            expect=(400,),
            endpoint="POST /graphql SyncdWrites",
        )
        answered = self.clock()
        errors = graphql_errors(body)
        by_alias: dict[str, list[dict]] = {}
        for error in errors:
            path = error.get("path")
            alias = path[0] if isinstance(path, list) and path and isinstance(path[0], str) else ""
            by_alias.setdefault(alias, []).append(error)
        if "" in by_alias:  # about the whole request: credentials, rate limit, a malformed document
            self._raise_for("SyncdWrites", by_alias[""], mutation=True)
        data = body.get("data") if isinstance(body, dict) else None
        results: list[WriteResult | Exception] = []
        for n, (kind, _) in enumerate(inputs):
            alias = f"w{n}"
            if alias in by_alias:
                try:
                    self._raise_for("SyncdWrites", by_alias[alias], mutation=True)
                except SyncdError as exc:
                    results.append(exc)
                continue
            payload = data.get(alias) if isinstance(data, dict) else None
            if payload is None:
                why = "SyncdWrites: no answer for this write (another write of its batch was refused)"
                results.append(TransientError(self.name, why, maybe_applied=True))
                continue
            try:
                field = "attachment" if kind == "attachment" else "comment"
                results.append(self._write_result("SyncdWrites", payload, field))
            except SyncdError as exc:
                results.append(exc)
                continue
            issue = object_or_empty(payload[field]).get("issue") if n in echo else None
            stamp = _node_time(issue)
            # Kept only when stamped strictly before the answer came (by this process's clock): a
            # change of the issue after it then has a later instant (see _issue_page).
            if isinstance(issue, dict) and isinstance(issue.get("id"), str) and stamp is not None and stamp < answered:
                self._echoes.pop(issue["id"], None)
                self._echoes[issue["id"]] = issue
        return results

    def landed_batch(self, writes: list[BatchedWrite]) -> list[bool]:
        """Which interrupted writes landed: every issue's marker comment and attachments
        in one aliased query. An issue that is gone answers False (sending finds why);
        as ``issue`` is non-null, it nulls the whole answer, so the query is asked
        again without it."""
        found = [False] * len(writes)
        for start in range(0, len(writes), WRITE_BATCH):
            ask = list(range(start, min(start + WRITE_BATCH, len(writes))))
            while ask:
                data, failed = self._find_markers([writes[n] for n in ask])
                if not failed:
                    for i, n in enumerate(ask):
                        issue = data.get(f"m{i}")
                        found[n] = isinstance(issue, dict) and _holds_marker(issue, writes[n].key)
                    break
                ask = [n for i, n in enumerate(ask) if i not in failed]
        return found

    def _find_markers(self, writes: list[BatchedWrite]) -> tuple[dict, set[int]]:
        """One SyncdFindMarkers request: (its data, the positions whose issue could not be read)."""
        data, failed = self._aliased_lookup(
            "SyncdFindMarkers",
            q.find_markers(len(writes)),
            [w.issue_id for w in writes],
            [{"body": {"contains": marker_token(w.key)}} for w in writes],
            "m",
        )
        return data, set(failed)

    def _aliased_lookup(
        self, operation: str, document: str, issue_ids: list[str], filters: list[dict[str, Any]], alias: str
    ) -> tuple[dict, dict[int, list[dict]]]:
        """One aliased look-up of several issues (``q.aliased_issues``: ``$idN`` the issue,
        ``$cN`` its comment filter, answered under ``<alias>N``): (its data, the errors of
        each position whose issue could not be read). An error about the whole request is
        raised; so is an answer with no data object when no position failed (a failed one
        nulls ``data``, as ``issue`` is non-null)."""
        variables: dict[str, Any] = {}
        for n, (issue_id, flt) in enumerate(zip(issue_ids, filters)):
            variables[f"id{n}"] = issue_id
            variables[f"c{n}"] = flt
        body = self.http.request_json(
            "POST",
            "graphql",
            json={"query": document, "variables": variables, "operationName": operation},
            expect=(400,),
            endpoint=f"POST /graphql {operation}",
        )
        failed: dict[int, list[dict]] = {}
        whole: list[dict] = []
        for error in graphql_errors(body):
            path = error.get("path")
            name = path[0] if isinstance(path, list) and path and isinstance(path[0], str) else ""
            position = name[len(alias) :]
            if name.startswith(alias) and position.isdigit() and int(position) < len(issue_ids):
                failed.setdefault(int(position), []).append(error)
            else:
                whole.append(error)
        if whole:
            self._raise_for(operation, whole, mutation=False)
        data = body.get("data") if isinstance(body, dict) else None
        if not failed and not isinstance(data, dict):
            raise PayloadError(self.name, f"{operation}: response has no data object", payload=body)
        return (data if isinstance(data, dict) else {}), failed

    def _write_result(self, operation: str, payload: Any, field: str) -> WriteResult:
        if not isinstance(payload, dict) or payload.get("success") is not True:
            raise ApiError(self.name, f"{operation}: Linear did not report success")
        obj = payload.get(field)
        if not isinstance(obj, dict) or not obj.get("id"):
            raise PayloadError(self.name, f"{operation}: response has no {field}.id", payload=payload)
        return WriteResult(updated_at=parse_time(obj.get("updatedAt")), id=obj["id"])

    def find_marker(self, issue_id: str, key: str) -> bool:
        token = marker_token(key)
        data = self._graphql(
            "SyncdFindMarker", q.FIND_MARKER, {"id": issue_id, "comments": {"body": {"contains": token}}}
        )
        issue = data.get("issue")
        if not isinstance(issue, dict):
            raise Gone(self.name, f"SyncdFindMarker: no issue {issue_id} (deleted, or not visible to this account)")
        return _holds_marker(issue, key)

    # -- escalation: issues syncd creates, comments kept in place -----------------------

    def is_private(self, team: str) -> bool:
        """A Linear workspace is seen only by its members, whatever the team."""
        return True

    def create_issue(self, team: str, draft: IssueDraft, key: str) -> WriteResult:
        """One ``issueCreate`` with the id :func:`created_issue_id` derives from ``key``.

        The team id and label ids come from :meth:`_create_lookup`, cached for
        the process. Labels that do not exist in the team or the workspace
        are skipped (and logged), never created. The description ends with
        the hidden ``<!-- syncd:KEY -->`` marker. Because the id is fixed, the
        create may be retried on a lost answer: a second create is refused,
        and a refused create whose issue exists is answered with that issue.
        """
        for attempt in (1, 2):
            team_id, label_ids, cached = self._create_lookup(team, draft.labels)
            issue: dict[str, Any] = {
                "id": created_issue_id(key),
                "teamId": team_id,
                "title": draft.title,
                "description": f"{draft.body.rstrip()}\n\n<!-- {marker_token(key)} -->",
            }
            if label_ids:
                issue["labelIds"] = label_ids
            priority = linear_priority(draft.priority)
            if priority is not None:
                issue["priority"] = priority
            try:
                data = self._graphql(
                    "SyncdIssueCreate", q.ISSUE_CREATE, {"input": issue}, mutation=True, idempotent=True
                )
            except (AuthError, TransientError):
                raise
            except NotFound:
                # A cached team or label may have gone since: forget them and look again, once.
                if attempt == 1 and cached:
                    self._forget_team(team)
                    continue
                raise
            except ApiError:
                landed = self._find_created_result(issue["id"])
                if landed is not None:
                    return landed
                raise
            return self._write_result("SyncdIssueCreate", data.get("issueCreate"), "issue")
        raise AssertionError("unreachable")  # pragma: no cover

    def find_created(self, team: str, key: str) -> str | None:
        """The id of the issue created for ``key``, read by that id with ``issue(id:)``.

        This is a read of the issue itself, which Linear answers from its
        primary store as soon as the create returned; a search (by title or
        by the marker in the description) goes through an index that can lag
        behind a create, and would miss an issue made a moment before a
        crash. The issue is found wherever it lives now, even if it moved to
        another team since."""
        found = self._find_created_result(created_issue_id(key))
        return found.id if found is not None else None

    def _find_created_result(self, issue_id: str) -> WriteResult | None:
        try:
            data = self._graphql("SyncdFindCreated", q.FIND_CREATED, {"id": issue_id})
        except NotFound:
            return None
        node = data.get("issue")
        if node is None:
            return None
        if not isinstance(node, dict) or node.get("id") != issue_id:
            raise PayloadError(self.name, f"SyncdFindCreated: issue {issue_id} answered without its id", payload=data)
        return WriteResult(updated_at=parse_time(node.get("updatedAt")), id=issue_id)

    def _create_lookup(self, team: str, labels: tuple[str, ...]) -> tuple[str, list[str], bool]:
        """(team id, label ids, whether everything came from the cache): one request at most."""
        team_key = team.strip().upper()
        names = list(dict.fromkeys(n.strip() for n in labels if n and n.strip()))
        now = self.clock().timestamp()
        wanted = [n for n in names if not self._label_fresh((team_key, n.lower()), now)]
        need_team = team_key not in self._team_ids
        if need_team or wanted:
            label_filter = (
                {
                    "and": [
                        {"or": [{"name": {"eqIgnoreCase": n}} for n in wanted]},
                        {"or": [{"team": {"null": True}}, {"team": {"key": {"eq": team_key}}}]},
                    ]
                }
                if wanted
                else {}
            )
            data = self._graphql(
                "SyncdCreateLookup",
                q.CREATE_LOOKUP,
                {"teamKey": team_key, "withTeam": need_team, "labels": label_filter, "withLabels": bool(wanted)},
            )
            if need_team:
                self._team_ids[team_key] = self._team_from(data, team_key)
            if wanted:
                self._remember_labels(data, team_key, wanted, now)
        ids = []
        for name in names:
            label_id, _ = self._labels[(team_key, name.lower())]
            if label_id is None:
                log.info("label not in the team or workspace, skipped", connector=self.name, team=team_key, label=name)
            elif label_id not in ids:
                ids.append(label_id)
        return self._team_ids[team_key], ids, not (need_team or wanted)

    def _label_fresh(self, key: tuple[str, str], now: float) -> bool:
        cached = self._labels.get(key)
        if cached is None:
            return False
        label_id, at = cached
        return label_id is not None or now - at < LABEL_MISS_TTL

    def _team_from(self, data: dict, team_key: str) -> str:
        conn = data.get("teams")
        nodes = conn.get("nodes") if isinstance(conn, dict) else None
        if not isinstance(nodes, list):
            raise PayloadError(self.name, "SyncdCreateLookup: expected teams.nodes to be a list", payload=data)
        for t in nodes:
            if isinstance(t, dict) and isinstance(t.get("id"), str) and str(t.get("key", "")).upper() == team_key:
                return t["id"]
        raise NotFound(
            self.name,
            f"no Linear team with key {team_key!r} (a route's team in the mapping files): "
            "use a team key shown in Linear's team settings that this API key can see",
        )

    def _remember_labels(self, data: dict, team_key: str, wanted: list[str], now: float) -> None:
        conn = data.get("issueLabels")
        nodes = conn.get("nodes") if isinstance(conn, dict) else None
        if not isinstance(nodes, list):
            raise PayloadError(self.name, "SyncdCreateLookup: expected issueLabels.nodes to be a list", payload=data)
        found: dict[str, tuple[int, str]] = {}  # name -> (rank, id): the team's own label before a workspace one
        for label in nodes:
            if not isinstance(label, dict) or not isinstance(label.get("id"), str):
                continue
            name = str(label.get("name") or "").lower()
            owner = label.get("team") if isinstance(label.get("team"), dict) else None
            rank = 0 if owner and str(owner.get("key", "")).upper() == team_key else 1 if owner is None else 2
            if rank < 2 and (name not in found or rank < found[name][0]):
                found[name] = (rank, label["id"])
        for name in wanted:
            hit = found.get(name.lower())
            self._labels[(team_key, name.lower())] = (hit[1] if hit else None, now)

    def _forget_team(self, team: str) -> None:
        team_key = team.strip().upper()
        self._team_ids.pop(team_key, None)
        for cached in [k for k in self._labels if k[0] == team_key]:
            del self._labels[cached]

    def upsert_comment(
        self,
        issue_id: str,
        body: str,
        key: str,
        slot: str,
        *,
        customer_data: bool = False,
        known: SlotRecord | None = None,
    ) -> WriteResult:
        """Keep ONE syncd comment per (issue, ``slot``), edited in place with ``commentUpdate``.

        The comment ends with ``<!-- syncd:SLOT -->`` and ``<!-- syncd:KEY -->``
        of the latest write. Where it is, or that there is none, comes without a
        look when something vouches for it (:meth:`_slot_plan`): the comment
        syncd wrote in this process, the one the store says the last delivered
        write answered with, or the feed's read of the issue (which, for the
        kept slot, says whether syncd's comment is there) together with a store
        that holds no earlier write of the slot. Otherwise it is looked for by
        the slot marker among comments written by syncd's own user, and text
        equal to what is there (but for the key marker) is not written again.
        An edit of a comment that is gone (deleted by someone) looks again and
        creates it. ``customer_data`` needs no refusal: Linear is private
        (:meth:`is_private`).
        """
        if not SLOT_RE.match(slot):
            raise ValueError(f"slot {slot!r}: use lowercase letters, digits, - and _")
        text = self._slot_text(body, key, slot)
        how, comment_id = self._slot_plan(issue_id, slot, known)
        if how == "update":
            assert comment_id is not None
            try:
                return self._slot_written(issue_id, slot, self._update_comment(comment_id, text))
            except NotFound:
                self._forget_slot(issue_id, slot, comment_id)
        existing, issue_uuid = self._find_slot_comment(issue_id, slot) if how != "create" else (None, issue_id)
        if existing is None:
            data = self._graphql(
                "SyncdCommentCreate", q.COMMENT_CREATE, {"input": {"issueId": issue_uuid, "body": text}}, mutation=True
            )
            result = self._write_result("SyncdCommentCreate", data.get("commentCreate"), "comment")
        elif _without_key(existing.get("body")) == _without_key(text):
            # Same words: no edit just to swap the key marker. A re-send after a
            # crash (find_marker said no) lands here too and is rightly a no-op.
            result = WriteResult(updated_at=parse_time(existing.get("updatedAt")), id=existing["id"])
        else:
            result = self._update_comment(existing["id"], text)
        return self._slot_written(issue_id, slot, result)

    @staticmethod
    def _slot_text(body: str, key: str, slot: str) -> str:
        return f"{body.strip()}\n\n{slot_marker(slot)}\n<!-- {marker_token(key)} -->"

    def _update_comment(self, comment_id: str, text: str) -> WriteResult:
        data = self._graphql(
            "SyncdCommentUpdate",
            q.COMMENT_UPDATE,
            {"id": comment_id, "input": {"body": text}},
            mutation=True,
            idempotent=True,
        )
        return self._write_result("SyncdCommentUpdate", data.get("commentUpdate"), "comment")

    def _slot_plan(
        self, issue_id: str, slot: str, known: SlotRecord | None
    ) -> tuple[Literal["create", "update", "look"], str | None]:
        """How to write the slot's comment with no look: ("update", its id), ("create", None),
        or ("look", None) when nothing vouches for where it is.

        A create needs two words: the feed read the issue (in this process) and
        saw no comment of syncd's in the slot, and the store holds no earlier
        write of the slot to the issue (``known.written`` False). The feed alone
        is not enough: another replica may have written it since that read (the
        store then says so); the store alone is not enough: it may be new, or
        lost, while the comment is there."""
        own = self._slot_comments.get((issue_id, slot))
        if own is not None:
            return "update", own[0]
        if slot == self._feed_slot and issue_id in self._feed_slots:
            seen = self._feed_slots[issue_id]
            if seen is not None:
                return "update", seen
            if known is not None and not known.written:
                return "create", None
        if known is not None and known.comment_id:
            return "update", known.comment_id
        return "look", None

    def _slot_written(self, issue_id: str, slot: str, result: WriteResult) -> WriteResult:
        assert result.id is not None  # _write_result refuses an answer without an id
        self._slot_comments[(issue_id, slot)] = (result.id, issue_id)
        if slot == self._feed_slot and issue_id in self._feed_slots:
            self._feed_slots[issue_id] = result.id
        return result

    def _forget_slot(self, issue_id: str, slot: str, comment_id: str) -> None:
        """The comment ``comment_id`` is gone: nothing remembered vouches for it any more."""
        self._slot_comments.pop((issue_id, slot), None)
        if self._feed_slots.get(issue_id) == comment_id:
            del self._feed_slots[issue_id]

    def _find_slot_comment(self, issue_id: str, slot: str) -> tuple[dict | None, str]:
        """(the slot's comment or None, the issue's id): a look among the issue's comments."""
        marker = slot_marker(slot)
        data = self._graphql(
            "SyncdFindSlot", q.FIND_SLOT, {"issue": issue_id, "comments": {"body": {"contains": marker}}}
        )
        issue = data.get("issue")
        if not isinstance(issue, dict) or not isinstance(issue.get("id"), str):
            raise Gone(self.name, f"SyncdFindSlot: no issue {issue_id} (deleted, or not visible to this account)")
        viewer = (data.get("viewer") or {}).get("id")
        comments = (issue.get("comments") or {}).get("nodes") or []
        mine = [
            c
            for c in comments
            if isinstance(c, dict)
            and isinstance(c.get("id"), str)
            and marker in (_str(c.get("body")) or "")
            and (c.get("user") or {}).get("id") == viewer
        ]
        mine.sort(key=lambda c: str(c.get("createdAt") or ""))
        return (mine[0] if mine else None), issue["id"]

    def _find_slots(self, writes: list[BatchedWrite]) -> list[str | None | Exception]:
        """The look of :meth:`_find_slot_comment` for several slot writes in one request
        (SyncdFindSlots): each one's comment id, None (no comment), or the error that
        refused its issue (Gone). An issue that fails nulls the whole answer (``issue``
        is non-null), so the query is asked again without it."""
        out: list[str | None | Exception] = [None] * len(writes)
        ask = list(range(len(writes)))
        while ask:
            slots: list[dict[str, Any]] = []
            for n in ask:
                w = writes[n]
                assert isinstance(w.write, UpsertComment)
                slots.append(_own_slot_filter(w.write.slot))
            data, failed = self._aliased_lookup(
                "SyncdFindSlots", q.find_slots(len(ask)), [writes[n].issue_id for n in ask], slots, "s"
            )
            if failed:
                for i, errors in failed.items():
                    try:
                        self._raise_for("SyncdFindSlots", errors, mutation=False)
                    except SyncdError as exc:
                        out[ask[i]] = exc
                ask = [n for i, n in enumerate(ask) if i not in failed]
                continue
            for i, n in enumerate(ask):
                issue = data.get(f"s{i}")
                if not isinstance(issue, dict) or not isinstance(issue.get("id"), str):
                    why = f"SyncdFindSlots: no issue {writes[n].issue_id} (deleted, or not visible to this account)"
                    out[n] = Gone(self.name, why)
                    continue
                nodes = (issue.get("comments") or {}).get("nodes") or []
                mine = sorted(
                    (c for c in nodes if isinstance(c, dict) and isinstance(c.get("id"), str)),
                    key=lambda c: str(c.get("createdAt") or ""),
                )
                out[n] = mine[0]["id"] if mine else None
            break
        return out


def _own_slot_filter(slot: str) -> dict[str, Any]:
    """The comments syncd's own user wrote that hold ``slot``'s marker (filtered by Linear)."""
    return {"body": {"contains": slot_marker(slot)}, "user": {"isMe": {"eq": True}}}


def _holds_marker(issue: dict, key: str) -> bool:
    """Whether an issue read by q.FIND_MARKER's selection holds the marker of ``key``."""
    comments = (issue.get("comments") or {}).get("nodes") or []
    if any(key in find_markers(c.get("body")) for c in comments if isinstance(c, dict)):
        return True
    attachments = (issue.get("attachments") or {}).get("nodes") or []
    return any(
        isinstance(a, dict) and isinstance(a.get("metadata"), dict) and a["metadata"].get("syncd") == key
        for a in attachments
    )


def _no_team(team: str, teams: dict[str, str], known: str) -> str:
    same = next((k for k in teams if k.lower() == team.lower()), None)
    if same:
        return f"team {team!r} is written {same!r} in Linear (keys are matched as written); write {same}"
    return f"no Linear team with key {team!r} that this API key can see (teams: {known}); use one of those"


def _without_key(text: Any) -> str:
    """A comment's text without its key marker: what a reader sees, and what syncd compares."""
    return KEY_MARKER_RE.sub("", text if isinstance(text, str) else "").strip()


def _node_time(node: Any) -> datetime | None:
    if not isinstance(node, dict) or not isinstance(node.get("updatedAt"), str):
        return None
    try:
        parsed = parse_time(node["updatedAt"])
        if parsed is not None:
            iso(parsed)  # in range once made UTC
        return parsed
    except (ValueError, OverflowError):
        return None


def _str(value: Any) -> str | None:
    """A string field of a payload, or None when it is anything else."""
    return value if isinstance(value, str) else None


def _node_label(node: Any) -> str | None:
    """The best name for a rejected node: its id, else its identifier or URL."""
    if not isinstance(node, dict):
        return None
    for k in ("id", "identifier", "url"):
        if isinstance(node.get(k), str) and node[k]:
            return node[k]
    return None


def _attachments(node: dict) -> tuple[Attachment, ...]:
    conn = node.get("attachments")
    nodes = conn.get("nodes") if isinstance(conn, dict) else None
    out = []
    for a in nodes if isinstance(nodes, list) else ():
        if not isinstance(a, dict) or not isinstance(a.get("url"), str):
            continue
        metadata = object_or_empty(a.get("metadata"))
        marker = metadata.get("syncd") if isinstance(metadata.get("syncd"), str) else None
        if marker is None:
            found = find_markers(f"{_str(a.get('title')) or ''} {a['url']}")
            marker = found[0] if found else None
        out.append(Attachment(a["url"], _str(a.get("title")) or "", marker))
    return tuple(out)
