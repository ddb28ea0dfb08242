"""The connector protocol and registry.

A connector turns one service's API into syncd's records and carries out
writes. It owns its config model, its HTTP session, its cursor format,
normalisation and write operations, and nothing else: it never touches the
store and makes no mapping decisions.

Connectors are found through the ``syncd.connectors`` entry point group; the
built-in ones register the same way a third-party package would.

What the rest of syncd needs to know about a service beyond the abstract
methods, a connector class *declares* as class attributes (nothing probes
for methods or reads class names):

- ``display_name``: the service's name as people read it ("GitHub");
- ``text_format``: how the texts written there are read (markdown, adf, plain);
- ``Helpdesk.status_field``: the config field naming the custom ticket field
  that shows the linked issues' status;
- ``Helpdesk.comments_by_page``, ``Helpdesk.bulk_updates``: the helpdesk reads
  the comments of a page of changed tickets, and writes many tickets, in few
  requests (see the class);
- ``Tracker.needs_key_lookup``: the tracker reads an issue by its key only,
  so the engine hands it ``key_lookup``;
- ``Tracker.state_rule_model``: the ``[states.<name>]`` rule in the tracker's
  own state words (the keys of ``Issue.native``);
- ``Tracker.team_pattern``: what a route's ``team`` must look like;
- ``Tracker.attachment_format``, ``presence_batch``, ``comment_presence_batch``,
  ``reports_visibility``: see the class;
- ``webhook``: how the service signs the webhooks it sends (a
  :class:`WebhookSignature`), for the daemon's webhook doorbells;
- ``fake``: where the connector's fake service lives, as an import path
  string ``"package.module:Class"`` (the product never imports it); the
  conformance suite in :mod:`connectors.testing` runs the connector against it.
"""

from __future__ import annotations

import abc
import base64
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import entry_points
from typing import Annotated, Any, Callable, ClassVar, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from syncd.errors import ConfigError, PayloadError, SyncdError
from syncd.http import HttpClient
from syncd.records import Comment, Issue, IssueRemark, Ticket
from syncd.writes import AttachTicket, FollowUpTicket, IssueComment, IssueDraft, TicketUpdate, UpsertComment

Role = Literal["helpdesk", "tracker"]

ENTRY_POINT_GROUP = "syncd.connectors"


class Unsupported(SyncdError):
    """The connector cannot do this write (an optional capability a plugin may lack)."""

    def __init__(self, connector: str, what: str):
        super().__init__(
            f"{connector}: this connector cannot {what}; "
            "use a connector version that can, or leave that part of the handoff off"
        )
        self.connector = connector


# --- markers ------------------------------------------------------------------

MARKER_RE = re.compile(r"syncd:([0-9a-f]{20})\b")


def marker_token(key: str) -> str:
    """The text every write carries so that it can be found again."""
    return f"syncd:{key}"


def find_markers(text: str | None) -> tuple[str, ...]:
    return tuple(MARKER_RE.findall(text or ""))


# --- config -------------------------------------------------------------------


class ConnectorConfig(BaseModel):
    """Settings every connector takes. Kinds extend it with their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    url: str = Field(description="Base URL of the service (or the sandbox, or a self-hosted instance).")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for a response.")
    connect_timeout: float = Field(5.0, gt=0, le=120)
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per request before giving up.")
    max_wait: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Longest wait for a rate limit slept in place; a longer one parks the connector until its end.",
    )
    requests_per_minute: float | None = Field(None, gt=0, description="A request budget of our own.")
    poll_interval: float | None = Field(None, gt=0, description="Seconds between polls; overrides [daemon].")
    webhook_secret: SecretStr | None = Field(
        None,
        description="The secret the service signs its webhooks with; with daemon.webhook_address, "
        "a signed webhook makes syncd poll this connector at once (docs/webhooks.md).",
    )
    webhook_secret_file: str | None = Field(None, description="A file holding webhook_secret.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://acme.example.com")
        return value.rstrip("/")


def read_secret(value: SecretStr | None, path: str | None) -> SecretStr | None:
    """A secret given directly (from the environment) or read from a file."""
    if value is not None:
        return value
    if path is None:
        return None
    with open(path, encoding="utf-8") as fh:
        return SecretStr(fh.read().strip())


def load_secret(connector: str, key: str, value: SecretStr | None, path: str | None) -> SecretStr | None:
    """The secret ``key`` of the connector named ``connector``: given directly
    (from the environment) or in the file ``<key>_file``, read when the session
    is made. ConfigError, one line naming the key, when the file cannot be read."""
    try:
        return read_secret(value, path)
    except OSError as exc:
        raise ConfigError(
            [
                f"connectors.{connector}.{key}_file: cannot read {path!r} "
                f"({exc.strerror or exc}); check the path and its permissions"
            ]
        ) from None


def require_secret(connector: str, key: str, value: SecretStr | None, path: str | None, fix: str) -> SecretStr:
    """:func:`load_secret`, and a ConfigError saying ``fix`` when the secret is absent or empty."""
    secret = load_secret(connector, key, value, path)
    if secret is None or not secret.get_secret_value():
        where = f"{key}_file: {path!r} is empty" if value is None and path else f"{key}: not set or empty"
        raise ConfigError([f"connectors.{connector}.{where}; {fix}"])
    return secret


# --- state rules -------------------------------------------------------------

StateName = Annotated[str, Field(min_length=1)]


class StateRule(BaseModel):
    """One rule of a ``[states.<name>]`` map, as the admin writes it.

    A tracker subclasses it with its own condition fields, named as the words
    its connector puts in :attr:`Issue.native <syncd.records.Issue.native>`
    (Linear: ``type``, ``name``); each is optional and at least one must be
    given. All given conditions must hold for the rule to apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Literal["assigned", "waiting", "resolved"]
    show: str = "{state_name}"

    @classmethod
    def conditions(cls) -> tuple[str, ...]:
        """The condition fields, in declaration order: the keys of ``Issue.native``."""
        return tuple(k for k in cls.model_fields if k not in StateRule.model_fields)

    @model_validator(mode="after")
    def _some_condition(self) -> "StateRule":
        keys = type(self).conditions()
        if all(getattr(self, k) is None for k in keys):
            raise ValueError(f"a rule needs a condition: {' and/or '.join(keys)}")
        return self


# --- pages and writes ---------------------------------------------------------


@dataclass
class Rejected:
    """A record the connector could not normalise: quarantined by the engine."""

    record_id: str | None
    reason: str
    payload: Any = None


@dataclass
class Page:
    """One page of a feed.

    ``cursor`` is what to store once this page is committed: resuming from it
    must not skip anything not yet committed. ``done`` is True on the last
    page of this poll.
    """

    records: list[Any]
    cursor: str | None
    done: bool
    rejected: list[Rejected] = field(default_factory=list)
    # Comments on issues read with this page (a tracker with ``comment_feed``, when asked to read them).
    remarks: list[IssueRemark] = field(default_factory=list)
    # Issue id -> the ids of ALL its comments, where the page lists them completely: a comment
    # syncd mirrored that is not among them was deleted.
    comment_sets: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentAsk:
    """One changed ticket whose new comments a page needs (see :meth:`Helpdesk.page_comments`).

    ``after``: the newest comment id already read (None: every comment).
    ``since``: no comment to read is older than this (the ticket's change
    last stored when ``after`` is set, else its creation). ``until``: the
    ticket's ``updated_at`` in the page: its comments up to then at least.
    ``since`` is None where the helpdesk did not say when the ticket was made."""

    ticket_id: str
    after: str | None
    since: datetime | None
    until: datetime


@dataclass(frozen=True)
class TicketWrite:
    """One ticket's update in a bulk write (see :meth:`Helpdesk.update_each`).

    ``key``: the marker the note carries. ``current``: the engine's last
    snapshot of the ticket, a hint as for :meth:`Helpdesk.update_ticket`."""

    ticket_id: str
    update: TicketUpdate
    key: str
    current: Ticket | None = None


@dataclass(frozen=True)
class WriteResult:
    """What a write told us back. ``updated_at`` lets the engine recognise the
    echo of its own write in the next poll."""

    updated_at: datetime | None = None
    id: str | None = None
    # The human key of a record a create made, where the tracker cannot read by id alone (GitHub).
    key: str | None = None


@dataclass
class Presence:
    """What one existence check of linked issues found (see :meth:`Tracker.presence`).

    Every id asked about is in exactly one of ``found`` (read now: where it
    is and what it is), ``unchanged`` (the stored validator still matches:
    it exists, as it was) or ``gone`` (the tracker says it is deleted or not
    visible to syncd's account; the value says how it answered)."""

    found: dict[str, Issue] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)
    gone: dict[str, str] = field(default_factory=dict)
    validators: dict[str, str] = field(default_factory=dict)  # id -> ETag to send next time
    requests: int = 0


@dataclass
class CommentPresence:
    """What one existence check of mirrored comments found (see :meth:`Tracker.comments_present`).

    ``present``: the comments that still exist (read now, or the stored
    validator still matches); ``gone``: the ones the tracker says are deleted.
    An id in neither was not answered this time (checked again later)."""

    present: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    validators: dict[str, str] = field(default_factory=dict)  # comment id -> ETag to send next time
    requests: int = 0


@dataclass(frozen=True)
class SlotRecord:
    """What the store knows of syncd's comment of a slot on an issue, told to
    :meth:`Tracker.upsert_comment` so that it reads nothing the store answers.

    ``written``: a write of this slot to this issue was sent before (delivered,
    or it may have landed); False means the store holds none, which proves no
    comment only together with a feed that read the issue and saw none (the
    store may be new, or lost). ``comment_id``: the comment the last delivered
    write answered with, None when not known (found by its marker after a
    crash, or never written)."""

    written: bool = False
    comment_id: str | None = None


@dataclass(frozen=True)
class BatchedWrite:
    """One write of a batch (:meth:`Tracker.send_batch`): a comment, the ticket
    shown on an issue or (where :attr:`Tracker.batches_slots`) a slot's comment,
    carrying ``marker_token(key)`` as the single write would. ``slot``: for a
    slot's comment, what the store knows of it."""

    issue_id: str
    key: str
    write: IssueComment | AttachTicket | UpsertComment
    slot: SlotRecord | None = None


@dataclass(frozen=True)
class OpaqueRewrite:
    """What :meth:`Tracker.make_opaque` needs to rewrite syncd's texts on one issue.

    ``slots``: the opaque text of each slot comment syncd can compose only
    with the engine's data (the demand comment). ``written``: comment id →
    the ``updated_at`` the tracker answered to syncd's last write of that
    comment (a later ``updated_at`` means someone else edited it since).
    ``created``: when syncd created the issue from an escalation, the two
    drafts and the create's key: ``{"key", "private": {title, body},
    "public": {title, body}}``."""

    slots: dict[str, str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    created: dict[str, Any] | None = None


@dataclass(frozen=True)
class KeptText:
    """A text syncd could not make opaque, because someone edited it after syncd wrote it."""

    what: str  # "the linked-tickets comment", "the issue description", ...
    url: str
    edited_by: str | None  # None when the tracker does not say who
    edited_at: datetime | None


@dataclass(frozen=True)
class OpaqueResult:
    rewritten: tuple[str, ...] = ()  # what was rewritten (same words as KeptText.what)
    kept: tuple[KeptText, ...] = ()
    comments: dict[str, str] = field(default_factory=dict)  # comment id -> updated_at after the rewrite


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- what `syncd check` finds -------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing `syncd check` found: ``level`` error (check fails), warning or note.

    ``where`` names what the admin edits: a config key (``connectors.linear.teams``)
    or a mapping file and entry (``rules/routes.toml: routes.bugs``)."""

    level: Literal["error", "warning", "note"]
    where: str
    message: str


@dataclass(frozen=True)
class FieldUse:
    """A helpdesk custom field syncd is configured to use.

    ``writes``: syncd writes free text there (it must be a text field);
    ``text``: syncd reads free text there (a text field fits best); neither:
    syncd compares its value. ``where`` names the config key or mapping entry."""

    where: str
    field_id: str
    purpose: str  # how the admin knows it: "where syncd shows the linked issues' status"
    writes: bool = False
    text: bool = False


@dataclass(frozen=True)
class RouteTarget:
    """A route of the mapping files that sends tickets to this tracker's ``team``.

    ``creates``: the route escalates, so syncd creates issues there."""

    where: str
    route: str
    team: str
    creates: bool = False


@dataclass(frozen=True)
class CheckTargets:
    """What the configuration and the mapping files ask of one connector, for
    :meth:`Connector.check_objects`."""

    fields: tuple[FieldUse, ...] = ()
    routes: tuple[RouteTarget, ...] = ()


# --- webhooks -------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSignature:
    """How a service signs the webhooks it sends: an HMAC of the raw body with the
    webhook's secret, in one header. A connector declares its service's as
    :attr:`Connector.webhook`; syncd's webhook listener (``daemon.webhook_address``)
    checks each delivery with it, and the sandbox's fakes sign with it.

    - ``header``: where the signature is; ``prefix``: what precedes the digest there
      (``"sha256="``); ``digest``: ``"sha256"`` or ``"sha1"``; ``encoding``: ``"hex"``
      or ``"base64"``.
    - ``timestamp_header``: a header holding the time of sending, signed in front of
      the body (its text, then the body's bytes); ISO 8601 or Unix seconds.
    - ``timestamp_field``: a top-level field of the JSON body holding the time of
      sending in Unix milliseconds (signed with the body).
    - ``max_age``: seconds a delivery's time may be away from the clock (either way)
      before it is refused as stale; only where the service sends a time.
    """

    header: str
    digest: Literal["sha256", "sha1"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    timestamp_field: str | None = None
    max_age: float = 300.0

    def _mac(self, secret: bytes, body: bytes, stamp: str | None) -> str:
        message = (stamp or "").encode() + body
        raw = hmac.new(secret, message, self.digest).digest()
        return self.prefix + (raw.hex() if self.encoding == "hex" else base64.b64encode(raw).decode())

    def refusal(self, headers: Mapping[str, str], body: bytes, secret: bytes, now: datetime) -> str | None:
        """Why a delivery is refused ("unsigned", "bad_signature", "stale"), or None: it is genuine and fresh.
        ``headers`` with lower-case names."""
        given = headers.get(self.header.lower())
        stamp = headers.get(self.timestamp_header.lower()) if self.timestamp_header else None
        if not given or (self.timestamp_header and not stamp):
            return "unsigned"
        if not hmac.compare_digest(given.strip().encode(), self._mac(secret, body, stamp).encode()):
            return "bad_signature"
        sent: datetime | None = None
        if stamp is not None:
            sent = _webhook_time(stamp)
        elif self.timestamp_field:
            try:
                value = json.loads(body).get(self.timestamp_field)
                sent = datetime.fromtimestamp(float(value) / 1000, timezone.utc)
            except (ValueError, TypeError, AttributeError, OverflowError):
                sent = None
        if (self.timestamp_header or self.timestamp_field) and (
            sent is None or abs((now - sent).total_seconds()) > self.max_age
        ):
            return "stale"
        return None

    def sign(self, payload: dict[str, Any], secret: bytes, now: datetime) -> tuple[bytes, dict[str, str]]:
        """A delivery as the service would send it (for the sandbox's fakes): body and headers."""
        if self.timestamp_field:
            payload = {**payload, self.timestamp_field: int(now.timestamp() * 1000)}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        stamp = None
        if self.timestamp_header:
            stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers[self.timestamp_header] = stamp
        headers[self.header] = self._mac(secret, body, stamp)
        return body, headers


def _webhook_time(text: str) -> datetime | None:
    text = text.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- the protocol -------------------------------------------------------------


class Connector(abc.ABC):
    kind: ClassVar[str]
    role: ClassVar[Role]
    config_model: ClassVar[type[ConnectorConfig]]
    # The service's name as people know it ("GitHub"), in what they read:
    # "waiting for GitHub's rate limit until 14:05 UTC", "Zendesk #1017" in a
    # handoff. Default: the kind.
    display_name: ClassVar[str] = ""
    # The fake of this service ("package.module:Class", a syncd.sandbox.server.FakeService
    # that takes the connector exam): named, not imported, so the daemon never loads
    # it. None: no fake, which the conformance meta-test refuses.
    fake: ClassVar[str | None] = None
    # How the service signs its webhooks (None: it sends none syncd takes). A delivery
    # that passes rings the doorbell: the feed is polled now (see syncd.doorbell).
    webhook: ClassVar[WebhookSignature | None] = None

    def __init__(
        self,
        name: str,
        config: ConnectorConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.name = name
        self.config = config
        self._sleep = sleep
        # The app's clock (the engine's and the store's): a connector never
        # reads the machine's time itself, so tests and the sandbox can move it.
        self.clock = clock
        self.http = self.make_http()

    @property
    def label(self) -> str:
        """:attr:`display_name`, or the kind where the class declares none."""
        return self.display_name or self.kind

    @abc.abstractmethod
    def make_http(self) -> HttpClient:
        """Build this connector's one HTTP session (auth, headers, rate headers)."""

    def http_options(self) -> dict[str, Any]:
        """HttpClient keyword arguments common to every connector."""
        c = self.config
        return dict(
            timeout=(c.connect_timeout, c.timeout),
            max_attempts=c.max_attempts,
            max_wait=c.max_wait,
            requests_per_minute=c.requests_per_minute,
            sleep=self._sleep,
            wall_clock=lambda: self.clock().timestamp(),
            service=self.label,
        )

    @abc.abstractmethod
    def check(self) -> str:
        """Try the credentials; return who we are ("agent@acme.com"), raise AuthError."""

    def check_objects(self, targets: CheckTargets) -> list[Finding]:
        """Check, against the service, the objects the configuration and the
        mapping files name (fields and their types, teams, projects, issue types,
        repositories). Called by `syncd check` after :meth:`check` succeeded;
        a connector with nothing to check answers nothing."""
        return []

    @abc.abstractmethod
    def poll(self, cursor: str | None) -> Iterator[Page]:
        """Changes since ``cursor`` (None: first run), one page at a time."""

    def close(self) -> None:
        self.http.close()


# The canonical ticket statuses: the helpdesk contract's vocabulary. A helpdesk
# connector translates its service's statuses into these words in
# ``Ticket.status`` and back when it writes ``TicketUpdate.status``:
#   new      nobody has worked on it yet
#   open     an agent is on it
#   pending  waiting for the customer
#   hold     waiting for someone else (a third party, another team)
#   solved   answered; the customer may still reply, which reopens it
#   closed   final: it can no longer be updated or reopened (a follow-up
#            ticket continues it, see Helpdesk.create_follow_up)
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


class Helpdesk(Connector):
    """A helpdesk: tickets, in the canonical statuses of :data:`TICKET_STATUSES`."""

    role: ClassVar[Role] = "helpdesk"
    # How the notes and field values written here are read (see mappings.escaping):
    # "plain" where the helpdesk shows a note as written.
    text_format: ClassVar[str] = "plain"
    # The name of this connector's config field that holds the id of the custom
    # ticket field syncd writes the linked issues' status to (None: it has none).
    status_field: ClassVar[str | None] = None

    def status_field_id(self) -> str | None:
        """The custom field (id as text) that shows the linked issues' status, if configured."""
        value = getattr(self.config, self.status_field) if self.status_field else None
        return str(value) if value else None

    @abc.abstractmethod
    def ticket_url(self, ticket_id: str) -> str:
        """The agent-facing URL of a ticket."""

    @abc.abstractmethod
    def ticket_url_pattern(self) -> str:
        """A regex with a named group ``id`` matching this helpdesk's ticket URLs."""

    @abc.abstractmethod
    def get_ticket(self, ticket_id: str) -> Ticket: ...

    @abc.abstractmethod
    def comments(self, ticket_id: str, after: str | None = None) -> list[Comment]:
        """Comments newer than the comment id ``after``, oldest first."""

    # True where :meth:`page_comments` reads the new comments of a whole page of
    # changed tickets in a few requests (a feed of comments); False: one read a ticket.
    comments_by_page: ClassVar[bool] = False

    def page_comments(self, asks: list[CommentAsk]) -> dict[str, list[Comment] | PayloadError]:
        """The new comments of each ticket asked about (ticket id -> comments newer
        than its ``after``, oldest first), or the PayloadError its answer raised.

        The default reads each ticket's comments (:meth:`comments`); a helpdesk
        with a feed of comments overrides this and declares ``comments_by_page``."""
        out: dict[str, list[Comment] | PayloadError] = {}
        for ask in asks:
            try:
                out[ask.ticket_id] = self.comments(ask.ticket_id, after=ask.after)
            except PayloadError as exc:  # that ticket's answer only: quarantined by the engine
                out[ask.ticket_id] = exc
        return out

    @abc.abstractmethod
    def update_ticket(
        self, ticket_id: str, update: TicketUpdate, key: str, current: Ticket | None = None
    ) -> WriteResult:
        """Apply ``update``; a note carries ``marker_token(key)``.

        ``current`` is the engine's last snapshot of the ticket: a hint that
        can save a read, which the connector must not trust blindly (it may
        be a poll behind)."""

    def update_tickets(
        self, ticket_ids: list[str], update: TicketUpdate, key: str
    ) -> dict[str, WriteResult | Exception]:
        """The same update on many tickets. Connectors with a bulk API override this."""
        results: dict[str, WriteResult | Exception] = {}
        for ticket_id in ticket_ids:
            try:
                results[ticket_id] = self.update_ticket(ticket_id, update, key)
            except Exception as exc:  # reported per ticket to the caller
                results[ticket_id] = exc
        return results

    # How many tickets, each with its own update, one bulk write carries (0: none;
    # delivery then sends equal updates through update_tickets and the others one by one).
    bulk_updates: ClassVar[int] = 0

    def update_each(self, writes: list[TicketWrite]) -> dict[str, WriteResult | Exception]:
        """A different update on each ticket (ticket id -> result, or the error for
        that ticket), in as few requests as the helpdesk allows: at most
        ``bulk_updates`` tickets a request. Each note carries its own marker, so
        a write interrupted in the middle is found again ticket by ticket. The
        default sends them one by one."""
        results: dict[str, WriteResult | Exception] = {}
        for w in writes:
            try:
                results[w.ticket_id] = self.update_ticket(w.ticket_id, w.update, w.key, current=w.current)
            except Exception as exc:  # reported per ticket to the caller
                results[w.ticket_id] = exc
        return results

    @abc.abstractmethod
    def find_marker(self, ticket_id: str, key: str) -> bool:
        """Whether a write carrying ``key`` already landed on the ticket."""

    def link_fields(self) -> tuple[str, ...]:
        """Custom field ids whose value may name a linked issue."""
        return ()

    def agent_name(self, user_id: str) -> str | None:
        """The name an agent (a comment's author) goes by, read where the comment did not say (None: unknown)."""
        return None

    def create_follow_up(self, source_id: str, follow_up: "FollowUpTicket", key: str) -> WriteResult:
        """Open a new ticket that follows up ``source_id`` (which is closed and cannot be reopened).

        The new ticket references the source (Zendesk: ``via_followup_source_id``),
        has the same requester, and its first comment is ``follow_up.note`` as an
        internal note, so the agent replies from it. It carries the marker of
        ``key`` where :meth:`find_follow_up` can find it. ``WriteResult.id`` is
        the new ticket's id."""
        raise Unsupported(self.name, "create follow-up tickets")

    def find_follow_up(self, source_id: str, key: str) -> str | None:
        """The id of the follow-up ticket created with ``key``, if one was (after a crash)."""
        raise Unsupported(self.name, "create follow-up tickets")


class Tracker(Connector):
    role: ClassVar[Role] = "tracker"
    # How comments and descriptions written here are read: "markdown" or "adf"
    # (Markdown-escaped text that connectors.jira.adf.to_adf turns into a document).
    text_format: ClassVar[str] = "markdown"
    # How the ticket title given to attach_ticket is shown: "plain" (an
    # attachment or remote link title) or "markdown" (inside a comment).
    attachment_format: ClassVar[str] = "plain"
    # The ``[states.<name>]`` rule model in this tracker's own state words: its
    # condition fields are the keys normalise puts in ``Issue.native``
    # (None: the admin cannot write state maps for this tracker).
    state_rule_model: ClassVar[type[StateRule] | None] = None
    # What a route's ``team`` must be for this tracker: a regex and the words
    # that say it to the admin ('a Jira project key such as "PLAT"'). None: any.
    team_pattern: ClassVar[tuple[str, str] | None] = None
    # True where the tracker cannot read an issue by its stable id alone
    # (GitHub): the engine then sets ``key_lookup``, which answers the key
    # syncd last saw an issue id under (None when it never saw it).
    needs_key_lookup: ClassVar[bool] = False
    key_lookup: Callable[[str], str | None] | None = None
    # True where the tracker's feed can also bring the comments made or edited
    # since its cursor (``Page.remarks``), incrementally: the engine sets
    # ``read_comments`` when a route's conversation rule asks for them; off,
    # the feed costs what it did before.
    comment_feed: ClassVar[bool] = False
    read_comments: bool = False
    # The slots of the comments syncd keeps in place (the handoff's demand comment),
    # declared when the connector is built (``kept_slots=`` below; syncd.app.kept_slots
    # says which, from the mapping files): a tracker whose feed can tell whether each
    # issue it reads holds syncd's comment of these slots reads that with the issue,
    # so that upsert_comment needs no look before writing.
    kept_slots: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        config: ConnectorConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        kept_slots: tuple[str, ...] = (),
    ):
        self.kept_slots = tuple(kept_slots)
        super().__init__(name, config, sleep=sleep, clock=clock)

    def own_accounts(self) -> tuple[str, ...]:
        """The ids and names of the accounts syncd writes here with (their comments are never mirrored)."""
        return ()

    def native_of_stored(self, issue: Issue) -> dict[str, str | None]:
        """The state words of an issue stored before ``Issue.native`` existed,
        recovered from the record's category and state name (the app fills them
        in once after an upgrade, so the admin's state rules hold for issues
        that have not changed since). Trackers with state rules override it."""
        return {}

    @abc.abstractmethod
    def link_patterns(self) -> list[str]:
        """Regexes with a named group ``ref`` that find this tracker's issues in text.

        Asks nothing of the service; it may grow as the connector learns (the
        engine reads it again before each helpdesk page)."""

    def learn_keys(self) -> None:
        """Read from the service what :meth:`link_patterns` needs and the configuration
        does not say, once per process (a tracker following every team lists them).
        The engine calls it before reading tickets; the default needs nothing."""

    def key_prefixes(self) -> frozenset[str] | None:
        """The prefixes of this tracker's issue keys of the form PREFIX-123 (a team or
        project key, upper case), from its configuration. Where two trackers' prefixes
        can meet (a Jira project and a Linear team both ENG), a key alone does not say
        which issue is meant, and notes name the tracker ("ENG-89 in Jira").
        None: any prefix (every team followed, or the tracker does not say);
        empty: its keys have another form (GitHub's owner/repo#12)."""
        return None

    def normalise_ref(self, text: str) -> str:
        """The issue key (the form ``Issue.key`` and the store hold) of a ``ref`` the
        link patterns matched; a tracker whose URLs name an issue in another form
        (GitHub's ``owner/repo/issues/n``) overrides this, so that an issue the store
        knows is not read again because it was pasted as a URL."""
        return text

    @abc.abstractmethod
    def get_issue(self, ref: str) -> Issue:
        """An issue by stable id or by human key; NotFound if there is none.

        Every ``Issue`` a tracker returns (here, from ``poll`` and ``presence``)
        carries ``native``: the tracker's own words for its state, keyed as the
        condition fields of :attr:`state_rule_model`."""

    @abc.abstractmethod
    def add_comment(self, issue_id: str, body: str, key: str, *, customer_data: bool = False) -> WriteResult:
        """Comment on the issue; the body carries ``marker_token(key)``.

        ``customer_data=True``: the body names a customer (an agent's mirrored note in full);
        a tracker whose places can be public refuses it there (a ``Conflict``)."""

    @abc.abstractmethod
    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        """Show the ticket on the issue (an attachment or remote link), idempotent per URL."""

    @abc.abstractmethod
    def find_marker(self, issue_id: str, key: str) -> bool: ...

    # How many comments and attachments one request can carry (0: one write a
    # request, the tracker has no batch write). A tracker that sets it implements
    # send_batch and, where it can, landed_batch in one request.
    write_batch: ClassVar[int] = 0
    # True where send_batch also takes slot comments (UpsertComment, created or edited in place).
    batches_slots: ClassVar[bool] = False

    def send_batch(self, writes: list[BatchedWrite]) -> list[WriteResult | Exception]:
        """Send up to :attr:`write_batch` writes in one request; one result per write, in
        order: its WriteResult, or the error that refused it (Gone, NotFound, ...). An
        error that concerns the whole request (the answer was lost, credentials,
        rate limit) is raised instead. A write the service did not get to because
        another one failed is answered with a TransientError(maybe_applied=True)."""
        raise Unsupported(self.name, "send several writes in one request")

    # True where showing several tickets on one issue is one write (GitHub: the
    # issue's one context comment lists them): attach_tickets then takes them all.
    attaches_many: ClassVar[bool] = False

    def attach_tickets(self, issue_id: str, tickets: list[tuple[str, str, str]], key: str) -> WriteResult:
        """:meth:`attach_ticket` for several (url, title, subtitle) on one issue in one
        write, carrying ``marker_token(key)`` (the last write's key)."""
        raise Unsupported(self.name, "show several tickets on an issue in one write")

    def landed_batch(self, writes: list[BatchedWrite]) -> list[bool]:
        """Whether each interrupted write landed (its marker is there), in as few
        requests as the tracker allows; the default asks :meth:`find_marker` for each."""
        return [self.find_marker(w.issue_id, w.key) for w in writes]

    # How many issues one existence-check request reads (0: this tracker cannot check).
    presence_batch: ClassVar[int] = 0

    def presence(self, issue_ids: list[str], validators: dict[str, str]) -> Presence:
        """Whether each issue (by stable id) still exists, in as few requests as the
        service allows (at most ``presence_batch`` ids per call). ``validators``
        are the ETags of earlier checks, where the tracker has them."""
        raise Unsupported(self.name, "check that linked issues still exist")

    # How many comments one existence-check request reads (0: this tracker cannot check,
    # or does not need to: its comment feed lists deleted comments by their absence).
    comment_presence_batch: ClassVar[int] = 0

    def comments_present(self, comments: dict[str, str], validators: dict[str, str]) -> CommentPresence:
        """Whether each comment syncd mirrored still exists (``comments``: comment id ->
        its issue's stable id), at most ``comment_presence_batch`` per call, in as few
        requests as the service allows. ``validators`` are the ETags of earlier checks.
        For trackers whose comment feed does not show deletions."""
        raise Unsupported(self.name, "check that mirrored comments still exist")

    def follows(self, issue: Issue) -> bool:
        """Whether ``issue`` is in a place this connector follows (its project, team or
        repository is configured). An issue moved elsewhere still exists, but its
        changes no longer reach syncd."""
        return True

    def is_private(self, team: str) -> bool:
        """Whether what is written in ``team`` (a Linear team key, a GitHub
        repository, a Jira project) is seen only by the organisation. Customer
        names and personal data are written only where this is True."""
        return True

    def create_issue(self, team: str, draft: "IssueDraft", key: str) -> WriteResult:
        """Create an issue in ``team`` carrying ``marker_token(key)`` (hidden where the
        tracker allows) so that :meth:`find_created` can find it after a crash.
        ``WriteResult.id`` is the new issue's stable id (what ``get_issue`` accepts)."""
        raise Unsupported(self.name, "create issues")

    def find_created(self, team: str, key: str) -> str | None:
        """The stable id of the issue created with ``key`` in ``team``, if one was."""
        raise Unsupported(self.name, "create issues")

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
        """Keep ONE syncd comment per (issue, ``slot``), edited in place.

        Found by a hidden slot marker (and, where the tracker says who wrote
        it, written by syncd's own user); created when absent; edited only
        when its text changes. It also carries ``marker_token(key)`` of the
        latest write so :meth:`find_marker` can tell that write landed.
        ``customer_data=True`` says the body names a customer: refused where
        :meth:`is_private` is False. ``known``: what the store knows of the
        comment (None: nothing asked of the store)."""
        raise Unsupported(self.name, "edit a comment in place")

    # A tracker whose places (repositories) can turn public says so: it reports
    # each place's visibility as last read (:meth:`visibility`, no request) and
    # rewrites what syncd wrote there to the opaque form (:meth:`make_opaque`).
    reports_visibility: ClassVar[bool] = False

    def visibility(self) -> dict[str, bool]:
        """Place (as the tracker names it) → public, as last read; asks nothing."""
        return {}

    def make_opaque(self, issue_id: str, rewrite: "OpaqueRewrite", key: str) -> "OpaqueResult":
        """Rewrite every text syncd wrote on the issue to the form fit for a public place.

        Edits in place only (never creates); a text someone else edited since
        syncd wrote it is left alone and reported in ``OpaqueResult.kept``.
        Sending it again after a crash rewrites what is left and nothing twice."""
        raise Unsupported(self.name, "rewrite its texts for a public place")


# --- registry -----------------------------------------------------------------


def load_registry() -> dict[str, Any]:
    """Entry points by kind, from the ``syncd.connectors`` group (loaded on use)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def connector_class(kind: str, registry: dict[str, Any] | None = None) -> type[Connector]:
    """The connector class for ``kind``; ConfigError if none is installed."""
    registry = registry if registry is not None else load_registry()
    try:
        entry = registry[kind]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none installed"
        raise ConfigError([f"unknown connector kind {kind!r} (known: {known})"]) from None
    return entry.load() if hasattr(entry, "load") else entry
