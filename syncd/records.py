"""The shared vocabulary every part of syncd speaks.

Connectors normalise their API payloads into these records; the mapping layer
reads them and returns decisions; the store persists them as JSON. They are
frozen dataclasses (``Ref`` a named tuple) so that a snapshot can never be
mutated behind the store's back, and ``to_dict``/``from_dict`` (``from_json``
from the text) give a stable JSON form for snapshots.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple, overload


class StateCategory(str, enum.Enum):
    """Where an issue stands, whatever the tracker calls it.

    Linear's state types map one to one; Jira's status categories map
    new→unstarted, indeterminate→started, done→completed (or canceled by
    resolution); GitHub's open→unstarted, closed+completed→completed,
    closed+not_planned/duplicate→canceled.
    """

    TRIAGE = "triage"
    BACKLOG = "backlog"
    UNSTARTED = "unstarted"
    STARTED = "started"
    COMPLETED = "completed"
    CANCELED = "canceled"

    @property
    def is_closed(self) -> bool:
        return self in (StateCategory.COMPLETED, StateCategory.CANCELED)


class Ref(NamedTuple):
    """A stable reference to a record: the connector's name and the service's id.

    A named tuple, not a dataclass: a page hashes and compares tens of thousands of them
    (the keys of every bulk read), and a tuple does both without running any Python. It
    is stored as a record (``{"_type": "Ref", ...}``), never as a list."""

    connector: str
    id: str

    def __str__(self) -> str:
        return f"{self.connector}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> "Ref":
        connector, _, ident = text.partition(":")
        if not connector or not ident:
            raise ValueError(f"not a reference (want CONNECTOR:ID): {text!r}")
        return cls(connector, ident)


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    tier: str | None = None  # plan or tier where the helpdesk knows it


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str | None = None
    organization_id: str | None = None


@dataclass(frozen=True)
class Comment:
    """A comment on a ticket or an issue. ``public`` is False for internal notes."""

    id: str
    body: str
    public: bool
    author_id: str | None
    created_at: datetime
    # Idempotency keys of syncd markers found in this comment (echo detection).
    markers: tuple[str, ...] = ()
    author_name: str | None = None  # where the service's answer names the author


@dataclass(frozen=True)
class IssueRemark:
    """A comment on a tracker issue, as a comment feed reads it (the conversation mirror).

    ``updated_at`` later than ``created_at`` means edited; ``deleted`` that the
    tracker reports it gone; ``private`` that the tracker restricts who may read
    it (Jira's visibility); ``bot`` that the tracker marks its author as an app."""

    id: str
    issue_key: str  # the issue's key as the feed names it (the engine finds the issue by it)
    body: str
    created_at: datetime
    updated_at: datetime
    issue_id: str | None = None  # the issue's stable id, where the feed gives it
    author_id: str | None = None
    author_name: str | None = None
    url: str = ""
    deleted: bool = False
    private: bool = False
    bot: bool = False
    # Idempotency keys of syncd markers found in this comment (syncd's own: never mirrored back).
    markers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A link shown on an issue (Linear attachment, Jira remote link...)."""

    url: str
    title: str = ""
    # The syncd idempotency key when syncd wrote it, else None (a person did).
    marker: str | None = None


@dataclass(frozen=True)
class Ticket:
    ref: Ref
    key: str  # what people call it ("#123")
    url: str  # the agent-facing URL
    subject: str
    status: str  # canonical: new, open, pending, hold, solved, closed (connectors.base.TICKET_STATUSES)
    updated_at: datetime
    created_at: datetime | None = None
    priority: str | None = None
    requester: Customer | None = None
    organization: Organization | None = None
    assignee_id: str | None = None
    assignee_name: str | None = None  # where the helpdesk's answer names the agent
    group_id: str | None = None
    tags: tuple[str, ...] = ()
    # Custom fields by their id as a string, values as the API gives them.
    fields: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    form_id: str | None = None  # the helpdesk's ticket form, where it has forms

    @property
    def can_update(self) -> bool:
        return self.status != "closed"


@dataclass(frozen=True)
class Issue:
    ref: Ref
    key: str  # ENG-123, owner/repo#12, PROJ-7: changes when the issue moves
    url: str
    title: str
    state: StateCategory
    state_name: str  # what the tracker shows ("In Review")
    updated_at: datetime
    assignee: str | None = None
    team: str | None = None  # team key, repository or project
    resolution: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # True where anyone on the internet can read what syncd writes there.
    public: bool = False
    # The tracker's own words for the state, as its connector read them and as
    # the admins' state maps name them (Linear: {"type": "started", "name":
    # "In Review"}); keyed as the tracker's ``state_rule_model`` conditions.
    # Empty in snapshots stored before syncd kept it.
    native: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    ticket: Ref
    issue: Ref
    origin: str  # comment, tag, field, attachment, cli


@dataclass(frozen=True)
class Event:
    """One line of a follow-up's history (``syncd history TICKET``)."""

    kind: str
    summary: str
    ticket: Ref | None = None
    issue: Ref | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Stage(str, enum.Enum):
    """Where a support follow-up stands (DESIGN.md, "The handoff model").

    Computed by :func:`mappings.stages.compute_stage`, never typed in by hand.
    """

    NEW = "new"
    NEEDS_CONTEXT = "needs_context"
    ASSIGNED = "assigned"
    WAITING = "waiting"
    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"

    @property
    def label(self) -> str:
        return "Follow-up" if self is Stage.FOLLOW_UP else self.value.replace("_", " ").capitalize()


class PromiseState(str, enum.Enum):
    OPEN = "open"  # made; nothing to do yet
    DUE = "due"  # the linked work resolved: the customer must hear now
    KEPT = "kept"
    BROKEN = "broken"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (PromiseState.KEPT, PromiseState.BROKEN, PromiseState.CANCELLED)


@dataclass(frozen=True)
class PromiseChange:
    """One line of a promise's history."""

    state: PromiseState
    at: datetime
    reason: str


@dataclass(frozen=True)
class Promise:
    """What the customer was told they would hear, by when, and whether it happened.

    ``due_at`` is a deadline; ``trigger`` (``"issue_resolved"``) makes the
    promise fall due when the linked work resolves. A promise may have both.
    Transitions are the pure functions in :mod:`mappings.promises`.
    """

    id: str
    ticket: Ref
    what: str
    created_at: datetime
    origin: str  # rule, field, tag, cli
    issues: tuple[Ref, ...] = ()
    owner: str | None = None
    due_at: datetime | None = None
    trigger: str | None = None
    state: PromiseState = PromiseState.OPEN
    history: tuple[PromiseChange, ...] = ()
    rule: str | None = None  # the promise rule (mappings) that made it, if any


def idempotency_key(*parts: object) -> str:
    """A short, stable key for a transition; the same parts give the same key."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:20]


def utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


@overload
def format_time(dt: datetime) -> str: ...
@overload
def format_time(dt: None) -> None: ...
@overload
def format_time(dt: datetime | None) -> str | None: ...
def format_time(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return utc(dt).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# --- JSON form for snapshots -------------------------------------------------

_RECORD_TYPES: dict[str, type] = {
    "Ticket": Ticket,
    "Issue": Issue,
    "Comment": Comment,
    "IssueRemark": IssueRemark,
    "Customer": Customer,
    "Organization": Organization,
    "Attachment": Attachment,
    "Ref": Ref,
    "Promise": Promise,
    "PromiseChange": PromiseChange,
}


# The field names of each dataclass to_dict has met (dataclasses.fields is slow per call),
# and of the records that are named tuples (known here: to_dict must not take them for lists).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {Ref: Ref._fields}


# Types to_dict gives back as they are, known without asking (most values are these).
_AS_IS: frozenset[type] = frozenset({str, int, float, bool, type(None)})


# Types to_dict has met that are not records (tuples, dicts, datetimes, enums...).
_NOT_RECORDS: set[type] = set()


def to_dict(record: Any) -> Any:
    """Dataclass → JSON-able dict (datetimes as ISO strings, enums as values)."""
    kind = type(record)
    if kind in _AS_IS:
        return record
    names = _FIELD_NAMES.get(kind)
    if names is None and kind not in _NOT_RECORDS:
        if dataclasses.is_dataclass(record) and not isinstance(record, type):
            names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(record))
        else:
            _NOT_RECORDS.add(kind)
    if names is not None:
        out = {"_type": kind.__name__}
        for name in names:
            value = getattr(record, name)
            out[name] = value if type(value) in _AS_IS else to_dict(value)
        return out
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, datetime):
        return format_time(record)
    if isinstance(record, (list, tuple)):
        return [x if type(x) in _AS_IS else to_dict(x) for x in record]
    if isinstance(record, dict):
        return {k: v if type(v) in _AS_IS else to_dict(v) for k, v in record.items()}
    return record


def _field_plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Per field of a record type: its name and how a decoded JSON value becomes the field's value."""

    def plan(name: str) -> Callable[[Any], Any] | None:
        if name.endswith("_at") or name == "at":
            return lambda v: parse_time(v) if isinstance(v, str) else v
        if name == "state" and cls is Issue:
            return StateCategory
        if name == "state" and cls in (Promise, PromiseChange):
            return PromiseState
        return None

    names = cls._fields if cls is Ref else tuple(f.name for f in dataclasses.fields(cls))
    return tuple((name, plan(name)) for name in names)


_FIELD_PLANS: dict[str, tuple[type, tuple[tuple[str, Callable[[Any], Any] | None], ...]]] = {
    name: (cls, _field_plan(cls)) for name, cls in _RECORD_TYPES.items()
}


def from_dict(data: Any) -> Any:
    """Inverse of :func:`to_dict`."""
    if isinstance(data, dict):
        kind = data.get("_type")
        if kind is None:
            return {k: from_dict(v) for k, v in data.items()}
        cls, fields_plan = _FIELD_PLANS[kind]
        kwargs = {}
        for name, convert in fields_plan:
            if name not in data:
                continue
            value = data[name]
            if isinstance(value, (dict, list)):
                value = from_dict(value)
            if convert is not None:
                value = convert(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)
    if isinstance(data, list):
        return [from_dict(x) for x in data]
    return data


def _record_of(data: dict[str, Any]) -> Any:
    """``json.loads``' object hook for :func:`from_json`: a decoded object that names its record
    type becomes that record (its values are decoded already: the hook works from the inside out)."""
    kind = data.get("_type")
    if kind is None:
        return data
    cls, fields_plan = _FIELD_PLANS[kind]
    kwargs = {}
    for name, convert in fields_plan:
        if name in data:
            value = data[name]
            if convert is not None:
                value = convert(value)
            elif type(value) is list:
                value = tuple(value)
            kwargs[name] = value
    return cls(**kwargs)


def from_json(text: str | bytes) -> Any:
    """``from_dict(json.loads(text))`` in one pass: each record is made as its object is read."""
    return json.loads(text, object_hook=_record_of)
