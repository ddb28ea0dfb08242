"""The outbox's writes, typed: one frozen dataclass per kind of write.

A planner builds one of these, :meth:`Write.action` queues it as an outbox
:class:`Action` (which carries it typed), and delivery reads it back from the
store's row with :func:`stored` and sends it through the connector's method for its kind (the table in
``syncd/delivery.py``). Connectors take some of them as they are
(:class:`TicketUpdate`, :class:`FollowUpTicket`) or a part of them
(:class:`IssueDraft`, from a :class:`CreateIssue`).

Choices worth knowing:

- The store keeps a write as its ``op`` string and a JSON payload dict:
  :meth:`Write.payload` and :meth:`Write.from_payload` keep the keys the
  stores already hold, so an existing outbox reads as it is (no migration).
- A ticket update leaves empty parts out of its payload: an absent key and
  an empty one mean the same to every reader.
- ``TicketUpdate.replaces_resolution`` is a planning hint: it rides in the
  planned action's payload (as ``"replaces_resolution": true``) until the
  handoff folds the ticket's writes into one (:meth:`TicketUpdate.merge`),
  which drops it (:meth:`TicketUpdate.settled`) before the store sees it.
- ``describe()`` is the history line of a delivered write, with the text as
  the place it went shows it (no Markdown escapes, no hidden markers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Mapping, Protocol

from mappings.escaping import shown

NOTE_SEPARATOR = "\n\n"  # between the paragraphs of one internal note


def _first_line(text: object, fmt: str) -> str:
    return (shown(str(text or ""), fmt).strip().splitlines() or [""])[0]


Role = Literal["helpdesk", "tracker"]
TargetKind = Literal["ticket", "issue", "team"]


@dataclass(frozen=True)
class Write:
    """What every outbox write has: its op string, the side it goes to and what it targets.

    A kind declares them in its class line:
    ``class IssueComment(Write, op="issue.comment", role="tracker", target_kind="issue")``."""

    op: ClassVar[str]
    role: ClassVar[Role]
    # What an action's target names: a ticket, an issue or a tracker's team.
    target_kind: ClassVar[TargetKind]
    # Dropped unsent, with the rest of its issue's queue, when the issue is gone.
    drops_when_gone: ClassVar[bool] = False

    def __init_subclass__(
        cls, *, op: str, role: Role, target_kind: TargetKind, drops_when_gone: bool = False, **kw: Any
    ) -> None:
        super().__init_subclass__(**kw)
        cls.op, cls.role, cls.target_kind, cls.drops_when_gone = op, role, target_kind, drops_when_gone

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "Write":
        raise NotImplementedError

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return self.op

    def repeats(self) -> bool:
        """Sent twice, it would show twice (a note, a comment, a new issue or ticket).

        Such a write, planned while the store may be behind the services, has
        its marker looked for before its first send. Writes kept in place (an
        attachment, a slot's comment, a rewrite) never show twice."""
        return False

    def private_form(self, result: Mapping[str, Any] | None) -> bool:
        """Whether this write, delivered with ``result``, may have named a customer."""
        return False

    def marker_for(self, key: str) -> str:
        """The marker written with this write when its action's key is ``key``."""
        return key

    def action(self, key: str, connector: str, target: str, group: str) -> "Action":
        """This write, queued for ``connector``'s ``target``."""
        return Action(key, connector, target, self, group)


@dataclass(frozen=True)
class Action:
    """One write planned for the outbox.

    ``key`` is deterministic from (link, transition): planning the same input
    twice yields the same key, which the store uses to refuse duplicates and
    the connector writes as a marker so delivery can check before re-sending.
    ``group`` orders actions: actions of one group are delivered in order.
    The store keeps ``write`` as its op string and payload dict
    (:meth:`Write.payload`); nothing else sees the dict.
    """

    key: str
    connector: str
    target: str  # the service id of the ticket or issue written to
    write: Write
    group: str

    @property
    def op(self) -> str:
        """The kind of write, as the store and the history name it."""
        return self.write.op


@dataclass(frozen=True)
class TicketUpdate(Write, op="ticket.update", role="helpdesk", target_kind="ticket"):
    """One write to a ticket. Empty parts are left out of the request."""

    note: str | None = None  # internal note (private comment), plain text
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)  # custom field id -> value
    status: str | None = None
    # Change status only when the ticket's current status is one of these.
    status_from: tuple[str, ...] = ()
    # The marker written with it, where several tickets share one (one bulk request); else the action's key.
    marker: str | None = None
    # Planning only (settled away before the store): this note says more than the resolution note it replaces.
    replaces_resolution: bool = False

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.note:
            out["note"] = self.note
        if self.add_tags:
            out["add_tags"] = list(self.add_tags)
        if self.remove_tags:
            out["remove_tags"] = list(self.remove_tags)
        if self.fields:
            out["fields"] = dict(self.fields)
        if self.status:
            out["status"] = self.status
        if self.status_from:
            out["status_from"] = list(self.status_from)
        if self.marker:
            out["marker"] = self.marker
        if self.replaces_resolution:
            out["replaces_resolution"] = True
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "TicketUpdate":
        return cls(
            note=payload.get("note"),
            add_tags=tuple(payload.get("add_tags", ())),
            remove_tags=tuple(payload.get("remove_tags", ())),
            fields=dict(payload.get("fields", {})),
            status=payload.get("status"),
            status_from=tuple(payload.get("status_from", ())),
            marker=payload.get("marker"),
            replaces_resolution=bool(payload.get("replaces_resolution")),
        )

    def repeats(self) -> bool:
        return bool(self.note)  # tags, fields and a status written twice are the same

    def marker_for(self, key: str) -> str:
        return self.marker or key

    def __bool__(self) -> bool:
        return bool(
            self.note
            or self.add_tags
            or self.remove_tags
            or self.fields
            or self.status
            or self.status_from
            or self.marker
            or self.replaces_resolution
        )

    def settled(self) -> "TicketUpdate":
        """This write as the connector reads it: the planning hint removed."""
        return replace(self, replaces_resolution=False)

    def with_note(self, note: str) -> "TicketUpdate":
        """This write with one more paragraph in its internal note."""
        return replace(self, note=(self.note + NOTE_SEPARATOR + note) if self.note else note)

    def with_stage(self, stage: "TicketUpdate") -> "TicketUpdate":
        """This write, also showing the follow-up stage ``stage`` shows (its field and tags).

        The stage's field is set beside the write's own fields, its tag added
        beside the write's tags; the write keeps its own note, status and marker.
        """
        fields = {**self.fields, **stage.fields} if stage.fields else self.fields
        add = tuple(dict.fromkeys([*self.add_tags, *stage.add_tags]))
        remove = tuple(t for t in dict.fromkeys([*self.remove_tags, *stage.remove_tags]) if t not in add)
        return replace(self, fields=fields, add_tags=add or self.add_tags, remove_tags=remove or self.remove_tags)

    def merge(self, more: "TicketUpdate", *, keep_marker: bool = False) -> "TicketUpdate":
        """Two ticket writes as one: notes as paragraphs, fields and tags merged, the first status kept.

        ``keep_marker``: the result keeps this write's marker (or none), as a
        write already queued under its own key does."""
        out = self
        if more.note and more.replaces_resolution and self.status == "open":
            # The resolution's own note (it reopens the ticket) says less than the promise-due note,
            # which repeats its summary: one note, not the same list twice.
            out = replace(out, note=more.note)
        elif more.note:
            out = out.with_note(more.note)
        out = out.with_stage(more)  # fields and tags, merged as a stage change is
        if more.status and not out.status:
            out = replace(out, status=more.status, status_from=more.status_from or out.status_from)
        if not keep_marker and more.marker and not out.marker:
            out = replace(out, marker=more.marker)
        if more.replaces_resolution and not self.status:
            out = replace(out, replaces_resolution=True)  # still to be folded into the resolution's write
        return out

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        parts = []
        if self.note:
            parts.append("internal note: " + _first_line(self.note, text_format))
        if self.add_tags:
            parts.append("tags +" + ",".join(self.add_tags))
        if self.remove_tags:
            parts.append("tags -" + ",".join(self.remove_tags))
        if self.fields:
            parts.append("status field: " + "; ".join(str(v) for v in self.fields.values()))
        if self.status:
            parts.append(f"status → {self.status}")
        return " | ".join(parts) or "ticket update"


@dataclass(frozen=True)
class FollowUpTicket(Write, op="ticket.followup", role="helpdesk", target_kind="ticket"):
    """A new helpdesk ticket that follows up a closed one (the target: the closed ticket)."""

    subject: str
    note: str  # internal note: what to tell the customer
    requester_id: str | None = None
    assignee_id: str | None = None
    tags: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "note": self.note,
            "requester_id": self.requester_id,
            "assignee_id": self.assignee_id,
            "tags": list(self.tags),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "FollowUpTicket":
        return cls(
            payload["subject"],
            payload["note"],
            payload.get("requester_id"),
            payload.get("assignee_id"),
            tuple(payload.get("tags") or ()),
        )

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return f"follow-up ticket opened: {self.subject}"

    def repeats(self) -> bool:
        return True


@dataclass(frozen=True)
class IssueComment(Write, op="issue.comment", role="tracker", target_kind="issue", drops_when_gone=True):
    """A comment on an issue."""

    body: str

    def payload(self) -> dict[str, Any]:
        return {"body": self.body}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "IssueComment":
        return cls(payload["body"])

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return "comment: " + _first_line(self.body, text_format)[:80]

    def repeats(self) -> bool:
        return True


@dataclass(frozen=True)
class MirrorNote(Write, op="ticket.mirror_note", role="helpdesk", target_kind="ticket"):
    """The conversation mirror on a ticket: an internal note carrying a tracker comment
    (or its edit or deletion), or telling the agent a note of theirs was held.

    Its own kind, never folded into the handoff's ticket writes: one comment, one note."""

    note: str
    source: str  # the issue (or, held, the place) as a reference: "linear:<uuid>"
    comment: str  # the mirrored comment's id
    issue_key: str = ""
    author: str = ""
    held: bool = False  # an agent's note that could not go to a public place

    def payload(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "source": self.source,
            "comment": self.comment,
            "issue_key": self.issue_key,
            "author": self.author,
            "held": self.held,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "MirrorNote":
        return cls(
            str(payload["note"]),
            str(payload.get("source") or ""),
            str(payload.get("comment") or ""),
            str(payload.get("issue_key") or ""),
            str(payload.get("author") or ""),
            bool(payload.get("held")),
        )

    def update(self) -> TicketUpdate:
        """The ticket write the helpdesk connector makes of it."""
        return TicketUpdate(note=self.note)

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        if self.held:
            return f"held an agent's note (not copied to {self.issue_key}): " + _first_line(self.note, text_format)[:80]
        return f"mirrored {self.author}'s comment on {self.issue_key}: " + _first_line(self.note, text_format)[:80]

    def repeats(self) -> bool:
        return True


@dataclass(frozen=True)
class MirrorComment(Write, op="issue.mirror_comment", role="tracker", target_kind="issue", drops_when_gone=True):
    """The conversation mirror on an issue: an agent's internal note as a comment."""

    body: str
    public: bool = False  # composed for a public place (the opaque reference and the words only)
    ticket: str = ""  # the ticket's id
    comment: str = ""  # the agent's note's id
    author: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "public": self.public,
            "ticket": self.ticket,
            "comment": self.comment,
            "author": self.author,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "MirrorComment":
        return cls(
            str(payload["body"]),
            bool(payload.get("public")),
            str(payload.get("ticket") or ""),
            str(payload.get("comment") or ""),
            str(payload.get("author") or ""),
        )

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return f"mirrored {self.author}'s note from ticket {self.ticket}: " + _first_line(self.body, text_format)[:80]

    def repeats(self) -> bool:
        return True

    def private_form(self, result: Mapping[str, Any] | None) -> bool:
        return not self.public  # names the ticket and the agent: dropped unsent if the place turns public


@dataclass(frozen=True)
class AttachTicket(Write, op="issue.attach", role="tracker", target_kind="issue", drops_when_gone=True):
    """The ticket shown on the issue (an attachment, a link or a comment, as the tracker has)."""

    url: str
    title: str
    subtitle: str
    public: bool = False  # written in its public form (the issue was public when planned)

    def payload(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "subtitle": self.subtitle, "public": self.public}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "AttachTicket":
        return cls(payload["url"], payload["title"], payload["subtitle"], bool(payload.get("public")))

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return f"attachment: {_first_line(self.title, attachment_format)}"

    def private_form(self, result: Mapping[str, Any] | None) -> bool:
        return not self.public


@dataclass(frozen=True)
class IssueDraft:
    """A new issue for the tracker: the handoff record, already rendered.

    ``body`` is Markdown (the Jira connector converts it to ADF). ``labels``
    are added where the tracker has labels; unknown labels are skipped, not
    created, where creating them needs more rights than syncd has."""

    title: str
    body: str
    labels: tuple[str, ...] = ()
    priority: str | None = None  # the ticket's severity word ("sev1"), for trackers that map it


@dataclass(frozen=True)
class DraftText:
    title: str
    body: str

    def payload(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "DraftText":
        return cls(payload["title"], payload["body"])


@dataclass(frozen=True)
class CreateIssue(Write, op="issue.create", role="tracker", target_kind="team"):
    """An escalation: a new issue in a tracker's team (the target). Two drafts are
    planned; which one goes is decided at delivery, by the place's visibility then."""

    team: str
    private: DraftText
    public: DraftText
    labels: tuple[str, ...] = ()
    priority: str | None = None
    ticket: str | None = None  # the escalated ticket's id (the history line belongs to it)

    def draft(self, which: Literal["private", "public"]) -> IssueDraft:
        text = self.private if which == "private" else self.public
        return IssueDraft(text.title, text.body, self.labels, self.priority)

    def payload(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "private": self.private.payload(),
            "public": self.public.payload(),
            "labels": list(self.labels),
            "priority": self.priority,
            "ticket": self.ticket,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "CreateIssue":
        ticket = payload.get("ticket")
        return cls(
            str(payload.get("team") or ""),
            DraftText.from_payload(payload["private"]),
            DraftText.from_payload(payload["public"]),
            tuple(payload.get("labels") or ()),
            payload.get("priority"),
            str(ticket) if ticket is not None else None,
        )

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return f"issue created in {target}: {self.public.title}"

    def repeats(self) -> bool:
        return True

    def private_form(self, result: Mapping[str, Any] | None) -> bool:
        """Which draft went is in the delivered result (decided by the place's visibility then)."""
        return (result or {}).get("draft", "private") == "private"

    def drafts(self, key: str) -> dict[str, Any]:
        """What :meth:`Tracker.make_opaque` needs about the issue this created: the marker and both drafts."""
        return {"key": key, "private": self.private.payload(), "public": self.public.payload()}


@dataclass(frozen=True)
class UpsertComment(Write, op="issue.upsert_comment", role="tracker", target_kind="issue", drops_when_gone=True):
    """The one comment of a slot on an issue (the demand comment), written or edited to ``body``."""

    slot: str
    body: str
    customer_data: bool = False  # names customers: only for a private place

    def payload(self) -> dict[str, Any]:
        return {"slot": self.slot, "body": self.body, "customer_data": self.customer_data}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "UpsertComment":
        return cls(payload["slot"], payload["body"], bool(payload.get("customer_data")))

    def describe(self, target: str, *, text_format: str = "plain", attachment_format: str = "plain") -> str:
        return f"{self.slot} comment kept current: " + _first_line(self.body, text_format)[:80]

    def private_form(self, result: Mapping[str, Any] | None) -> bool:
        return self.customer_data


@dataclass(frozen=True)
class MakeOpaque(Write, op="issue.make_opaque", role="tracker", target_kind="issue"):
    """Rewrite what syncd wrote on an issue to the form fit for a public place."""

    place: str
    issue_key: str
    slots: dict[str, str] = field(default_factory=dict)
    created: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "issue_key": self.issue_key,
            "slots": dict(self.slots),
            "created": dict(self.created) if self.created else None,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "MakeOpaque":
        created = payload.get("created")
        return cls(
            str(payload.get("place") or ""),
            str(payload.get("issue_key") or ""),
            dict(payload.get("slots") or {}),
            dict(created) if created else None,
        )

    def describe(
        self, target: str, *, text_format: str = "plain", attachment_format: str = "plain", result: Any = None
    ) -> str:
        """``result``: the connector's OpaqueResult (what was rewritten, what was kept)."""
        done = ", ".join(result.rewritten) if result and result.rewritten else "nothing left to rewrite"
        kept = (
            f"; left as edited by someone else: {', '.join(k.what for k in result.kept)}"
            if (result and result.kept)
            else ""
        )
        return f"made private for a public place ({self.place}): {done}{kept}"


KINDS: tuple[type[Write], ...] = (
    TicketUpdate,
    FollowUpTicket,
    IssueComment,
    AttachTicket,
    CreateIssue,
    UpsertComment,
    MakeOpaque,
    MirrorNote,
    MirrorComment,
)
BY_OP: dict[str, type[Write]] = {kind.op: kind for kind in KINDS}

# The op strings, as the store and the history name them.
TICKET_UPDATE = TicketUpdate.op
TICKET_FOLLOW_UP = FollowUpTicket.op
ISSUE_COMMENT = IssueComment.op
ISSUE_ATTACH = AttachTicket.op
ISSUE_CREATE = CreateIssue.op
ISSUE_UPSERT = UpsertComment.op
ISSUE_OPAQUE = MakeOpaque.op
TICKET_MIRROR = MirrorNote.op
ISSUE_MIRROR = MirrorComment.op


def read(op: str, payload: Mapping[str, Any]) -> Write:
    """The write a stored action holds (KeyError: an op this version does not know)."""
    return BY_OP[op].from_payload(payload)


def kind_of(op: str) -> type[Write] | None:
    """The kind of write an op string names; None for one this version does not know."""
    return BY_OP.get(op)


class Stored(Protocol):
    """An outbox row as the store reads it back: the op string and payload dict of a write."""

    @property
    def op(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


def stored(row: Stored) -> Write | None:
    """The write an outbox row holds; None for an op this version does not know."""
    kind = BY_OP.get(row.op)
    return kind.from_payload(row.payload) if kind is not None else None
