"""``syncd once --dry-run``: plan a cycle, send nothing, keep nothing.

The cycle runs as ``syncd once`` runs it (every feed is read from the
stored cursors, links are found, the handoff is judged, writes are planned)
but against a scratch copy of the store in a temporary directory, and
without delivery. What the copy's outbox then holds is what a real run
would write: it is reported per ticket and per issue, with totals, and the
copy is deleted. The store file itself is only read (SQLite's online backup,
safe while the daemon runs), so nothing is kept: no cursor, no link, no
outbox row. Reads of the services are made, as a real run makes them.

Not shown: what a real run would plan only after a write has landed (the
writes that follow an escalation's created issue, or a follow-up ticket).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from connectors.base import Connector
from syncd.delivery import describe_write
from syncd.engine import CycleReport
from syncd.records import Ref, Ticket
from syncd.store import OutboxRow, Store
from syncd.writes import CreateIssue, stored


@dataclass
class PlannedWrite:
    connector: str
    target: str
    op: str
    what: str  # as a person reads it
    earlier: bool  # already waiting in the outbox from an earlier run


@dataclass
class Subject:
    """A ticket or an issue and what would be written to (or for) it."""

    kind: str  # "ticket" or "issue"
    connector: str
    id: str
    key: str
    title: str
    writes: list[PlannedWrite] = field(default_factory=list)


@dataclass
class DryRun:
    cycle: CycleReport
    subjects: list[Subject]

    @property
    def new(self) -> int:
        return sum(1 for s in self.subjects for w in s.writes if not w.earlier)

    @property
    def earlier(self) -> int:
        return sum(1 for s in self.subjects for w in s.writes if w.earlier)

    def totals(self) -> dict[str, int]:
        """New writes by kind, as people read the kinds."""
        out: dict[str, int] = {}
        for s in self.subjects:
            for w in s.writes:
                if not w.earlier:
                    label = f"{w.connector} {KIND_WORDS.get(w.op, w.op)}"
                    out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "polls": [p.__dict__ for p in self.cycle.polls],
            "writes": self.new,
            "already_waiting": self.earlier,
            "totals": self.totals(),
            "tickets": [_subject_dict(s) for s in self.subjects if s.kind == "ticket"],
            "issues": [_subject_dict(s) for s in self.subjects if s.kind == "issue"],
            "ok": self.cycle.ok,
        }

    def text(self) -> str:
        lines = ["dry run: nothing was sent and the store is unchanged"]
        for p in self.cycle.polls:
            line = f"  read {p.connector}: {p.records} record(s), {p.changed} changed, {p.links} new link(s)"
            if p.error:
                line += f"; ERROR {p.error}"
            lines.append(line)
        for kind, title in (("ticket", "tickets"), ("issue", "issues")):
            subjects = [s for s in self.subjects if s.kind == kind]
            if not subjects:
                continue
            lines.append(f"{title}:")
            for s in subjects:
                lines.append(f"  {s.key}" + (f"  {s.title}" if s.title else ""))
                for w in s.writes:
                    lines.append(f"    - {w.what}" + ("  (waiting from an earlier run)" if w.earlier else ""))
        total = f"would write {self.new} time(s)" if self.new else "nothing new to write"
        tickets = sum(1 for s in self.subjects if s.kind == "ticket" and any(not w.earlier for w in s.writes))
        issues = sum(1 for s in self.subjects if s.kind == "issue" and any(not w.earlier for w in s.writes))
        if self.new:
            total += f" to {tickets} ticket(s) and {issues} issue(s)"
        if self.earlier:
            total += f"; {self.earlier} write(s) from earlier runs wait in the outbox too"
        lines.append(total)
        for label, count in self.totals().items():
            lines.append(f"  {count:>6}  {label}")
        return "\n".join(lines)


# How the totals name each kind of write.
KIND_WORDS = {
    "ticket.update": "ticket updates (notes, tags, fields)",
    "ticket.followup": "follow-up tickets opened",
    "issue.comment": "comments on issues",
    "issue.attach": "tickets shown on issues",
    "issue.create": "issues created",
    "issue.upsert_comment": "demand comments kept current",
    "issue.make_opaque": "texts made opaque",
}


def _subject_dict(s: Subject) -> dict[str, Any]:
    return {
        "connector": s.connector,
        "id": s.id,
        "key": s.key,
        "title": s.title,
        "writes": [{"op": w.op, "what": w.what, "already_waiting": w.earlier} for w in s.writes],
    }


def dry_run(build: Callable[[Path], Any], copy: Callable[[Path], int]) -> DryRun:
    """Plan one cycle in a scratch copy of the store: ``copy(path)`` makes it (an SQLite file at
    ``path``; see :func:`scratch_copy`) and returns its highest outbox id; ``build(path)`` makes
    the app on that copy."""
    with tempfile.TemporaryDirectory(prefix="syncd-dry-run-") as scratch:
        path = Path(scratch) / "dry-run.db"
        before = copy(path)
        with build(path) as app:
            report = app.engine.cycle(deliver=False)
            subjects = planned(app.store, app.connectors, app.engine.helpdesk.name, before)
    return DryRun(report, subjects)


def planned(store: Store, connectors: dict[str, Connector], helpdesk: str, before: int) -> list[Subject]:
    """The outbox's unfinished writes, by the ticket or issue they concern (a create: its ticket)."""
    rows = [r for state in ("pending", "sending") for r in store.list_outbox(state, limit=1_000_000)]
    rows.sort(key=lambda r: r.id)
    by_ref: dict[Ref, Subject] = {}
    refs = [_concerns(r, helpdesk) for r in rows]
    snapshots = store.get_snapshots(refs)
    for row, ref in zip(rows, refs):
        subject = by_ref.get(ref)
        if subject is None:
            snap = snapshots.get(ref)
            kind = "ticket" if ref.connector == helpdesk else "issue"
            key = snap.key if snap is not None else (f"#{ref.id}" if kind == "ticket" else ref.id)
            if kind == "ticket":
                key = f"ticket {key}"
            title = (snap.subject if isinstance(snap, Ticket) else snap.title) if snap is not None else ""
            subject = by_ref[ref] = Subject(kind, ref.connector, ref.id, str(key), title)
        subject.writes.append(
            PlannedWrite(row.connector, row.target, row.op, _what(row, connectors), earlier=row.id <= before)
        )
    return list(by_ref.values())


def _concerns(row: OutboxRow, helpdesk: str) -> Ref:
    write = stored(row)
    if isinstance(write, CreateIssue):  # an issue to create: it belongs to the escalated ticket
        return Ref(helpdesk, str(write.ticket))
    return Ref(row.connector, row.target)


def _what(row: OutboxRow, connectors: dict[str, Connector]) -> str:
    text = " | ".join(_short(part) for part in describe_write(row, connectors.get(row.connector)).split(" | "))
    if isinstance(stored(row), CreateIssue):
        return f"{text} ({row.connector})"
    return text


def _short(part: str) -> str:
    """A long list of tags removed (every other stage's tag) said as a count: the rest is what matters."""
    if part.startswith("tags -") and part.count(",") >= 3:
        return f"tags -{part.count(',') + 1} others (where present)"
    return part
