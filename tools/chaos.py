"""The chaos driver: a stream of changes while ``syncd run`` is killed and restarted.

What it proves: after any number of SIGKILLs at random points, the services
hold exactly what one uninterrupted run would have written — every write
once, none missing, none extra.

How "expected" is defined, independently of syncd's store: the same change
stream (generated from a seed) is played twice against two fresh, identically
seeded sandboxes.

- the *reference* run applies each batch, then runs cycles in-process until
  nothing is left to do; nothing interrupts it;
- the *chaos* run keeps ``syncd run`` going as a real subprocess while the
  driver applies the same batches, SIGKILLs it at the k-th request it makes
  (k drawn from the seeded RNG), sometimes sends SIGHUP or SIGTERM, and
  restarts it each time.

What is compared is read from the fakes, never from syncd: the multiset of
(ticket, note text) of every note carrying a syncd marker, the multiset of
(issue, attachment url), each ticket's tags and linked-issue field, plus the
number of markers found more than once on one ticket. A second, stream-only
check needs no reference at all: every (ticket, issue) pair the stream links
must show one "Linked to" note on the ticket and the ticket on the issue.

The stream is shaped so that the outcome does not depend on when, within a
batch, syncd happens to observe each change (it runs concurrently with the
driver): in one batch an issue changes at most once, a changed issue gets no
new link, and a ticket is affected by at most one changed issue and then gets
no new link. Between batches the driver waits until syncd has caught up.

``python -m tools.chaos --changes 2000 --kills 50`` (``make chaos``) runs the
long version and prints the figures; the seed is printed so that a failure
can be replayed with ``--seed``.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from connectors.base import MARKER_RE, find_markers
from connectors.linear.seed import LinearWorld
from connectors.zendesk.fake import SANDBOX_EMAIL
from syncd.sandbox.harness import Playground

STATES = ("Triage", "Backlog", "Todo", "In Progress", "In Review", "Done", "Canceled")
TICKET_STATUSES = ("open", "pending", "hold", "solved")
MAX_LINKS_PER_TICKET = 3
# Kinds of change and how often each is drawn.
WEIGHTS = {"key_note": 22, "attach": 10, "new_ticket": 5, "move": 25, "assign": 6, "note": 16, "status": 16}
ZENDESK_FEED = "incremental/tickets/cursor"
LINEAR_FEED = "SyncdIssues"
BATCH_WRITES = "SyncdWrites"  # several Linear writes in one request
BULK_WRITE = "/update_many"  # Zendesk's Update Many: many tickets' notes in one request


def _bulk_size(request) -> int:
    """How many tickets a bulk write carries (a body per ticket, or ids=)."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return 0
    tickets = body.get("tickets") if isinstance(body, dict) else None
    if isinstance(tickets, list):
        return len(tickets)
    return len([i for i in (request.arg("ids") or "").split(",") if i])


# --- the change stream (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One act of a person. ``ticket`` and ``issue`` are indexes into the population."""

    kind: str
    ticket: int | None = None
    issue: int | None = None
    value: str | None = None


def _at(index: int | None) -> int:
    """A change's ticket or issue index, which its kind always sets."""
    if index is None:
        raise ValueError("this kind of change names no ticket or issue")
    return index


def _text(value: str | None) -> str:
    """A change's value, which its kind always sets."""
    if value is None:
        raise ValueError("this kind of change carries no value")
    return value


@dataclass
class Stream:
    seed: int
    tickets: int  # tickets that exist before the stream starts
    issues: int
    batches: list[list[Change]]
    links: set[tuple[int, int]]  # (ticket, issue) pairs the stream links

    @property
    def changes(self) -> int:
        return sum(len(b) for b in self.batches)


def generate(seed: int, *, changes: int, batch_size: int, tickets: int, issues: int) -> Stream:
    """A reproducible stream of ``changes`` changes in batches (see the module docstring)."""
    rng = random.Random(seed)
    state = {i: "Backlog" for i in range(issues)}
    links: dict[int, set[int]] = collections.defaultdict(set)  # issue -> tickets, as of batch start
    ticket_links: dict[int, set[int]] = collections.defaultdict(set)
    n_tickets = tickets
    batches: list[list[Change]] = []
    all_links: set[tuple[int, int]] = set()
    kinds, weights = zip(*WEIGHTS.items())
    while sum(len(b) for b in batches) < changes:
        batch: list[Change] = []
        changed_issues: set[int] = set()
        affected: set[int] = set()  # tickets linked to an issue changed in this batch
        newly_linked_issues: set[int] = set()
        newly_linked_tickets: set[int] = set()
        new_links: list[tuple[int, int]] = []
        size = min(batch_size, changes - sum(len(b) for b in batches))
        tries = 0
        while len(batch) < size and tries < size * 50:
            tries += 1
            kind = rng.choices(kinds, weights)[0]
            if kind in ("key_note", "attach", "new_ticket"):
                issue = rng.randrange(issues)
                if issue in changed_issues:
                    continue
                if kind == "new_ticket":
                    ticket = n_tickets
                else:
                    ticket = rng.randrange(n_tickets)
                    if ticket in affected or (
                        issue not in ticket_links[ticket] and len(ticket_links[ticket]) >= MAX_LINKS_PER_TICKET
                    ):
                        continue
                if kind == "new_ticket":
                    n_tickets += 1
                batch.append(Change(kind, ticket, issue))
                if issue not in ticket_links[ticket]:
                    new_links.append((ticket, issue))
                    ticket_links[ticket].add(issue)  # counts against the cap at once
                newly_linked_issues.add(issue)
                newly_linked_tickets.add(ticket)
            elif kind in ("move", "assign"):
                issue = rng.randrange(issues)
                linked = links[issue]
                if (
                    issue in changed_issues
                    or issue in newly_linked_issues
                    or linked & affected
                    or linked & newly_linked_tickets
                ):
                    continue
                if kind == "move":
                    target = rng.choice([s for s in STATES if s != state[issue]])
                    state[issue] = target
                else:
                    target = rng.choice(("Ada Novak", "Sam Okafor", ""))
                batch.append(Change(kind, None, issue, target))
                changed_issues.add(issue)
                affected |= linked
            elif kind == "note":
                batch.append(Change("note", rng.randrange(n_tickets), None, rng.choice(("private", "public"))))
            else:
                batch.append(Change("status", rng.randrange(n_tickets), None, rng.choice(TICKET_STATUSES)))
        for ticket, issue in new_links:
            links[issue].add(ticket)
            all_links.add((ticket, issue))
        batches.append(batch)
    return Stream(seed, tickets, issues, batches, all_links)


# --- the world and the people acting in it ------------------------------------------------------


def _linear(pg: Playground) -> LinearWorld:
    """The Linear part of the playground's world (the chaos run's tracker)."""
    world = pg.world("linear")
    assert isinstance(world, LinearWorld)
    return world


class World:
    """The population in one playground, and the people changing it through the public APIs."""

    def __init__(self, pg: Playground, tickets: int, issues: int):
        self.pg = pg
        org = pg.zendesk.add_organization("Chaos Industries", plan="enterprise")
        self.customer = pg.zendesk.add_user("Casey Chaos", "casey@chaos.example", organization_id=org["id"])
        self.tickets = [
            pg.zendesk.create_ticket(
                f"chaos ticket {n}", f"Something odd number {n}.", requester_id=self.customer["id"]
            )["id"]
            for n in range(tickets)
        ]
        self.issues = [pg.linear.create_issue("ENG", f"chaos issue {n}")["id"] for n in range(issues)]
        self.keys = [pg.linear.issue(i)["identifier"] for i in self.issues]
        self.engineers = {u["name"]: u["id"] for u in pg.linear.users.values()}

    def apply(self, change: Change, serial: int) -> None:
        pg, c = self.pg, change
        if c.kind == "key_note":
            pg.agent_note(self.tickets[_at(c.ticket)], f"Customer hit {self.keys[_at(c.issue)]} again (#{serial}).")
        elif c.kind == "note":
            pg.agent_note(
                self.tickets[_at(c.ticket)],
                f"Asked the customer for a HAR file (#{serial}).",
                public=c.value == "public",
            )
        elif c.kind == "status":
            pg.agent_set_status(self.tickets[_at(c.ticket)], _text(c.value))
        elif c.kind == "new_ticket":
            session = pg.agent_session()
            body = {
                "ticket": {
                    "subject": f"chaos ticket {c.ticket}",
                    "requester_id": self.customer["id"],
                    "comment": {"body": f"Filed for the customer; looks like {self.keys[_at(c.issue)]}."},
                }
            }
            response = session.post(f"{pg.sandbox.url('zendesk')}/api/v2/tickets", json=body, timeout=10)
            response.raise_for_status()
            self.tickets.append(response.json()["ticket"]["id"])
        elif c.kind == "move":
            pg.engineer_move(self.keys[_at(c.issue)], _text(c.value))
        elif c.kind == "assign":
            _linear(pg).graphql(
                "mutation A($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input)"
                " { success } }",
                {"id": self.issues[_at(c.issue)], "input": {"assigneeId": self.engineers.get(c.value)}},
            )
        elif c.kind == "attach":
            ticket = self.tickets[_at(c.ticket)]
            _linear(pg).graphql(
                "mutation T($input: AttachmentCreateInput!) { attachmentCreate(input: $input) { success } }",
                {
                    "input": {
                        "issueId": self.issues[_at(c.issue)],
                        "url": pg.zendesk.agent_url(ticket),
                        "title": f"Zendesk #{ticket}",
                    }
                },
                engineer="Sam Okafor",
            )
        else:
            raise ValueError(f"unknown change kind {c.kind!r}")


# --- what the services hold ---------------------------------------------------------------------


@dataclass
class Outcome:
    notes: collections.Counter  # (ticket id, note text without its marker) -> count
    attachments: collections.Counter  # (issue key, url) -> count
    tags: dict[int, tuple[str, ...]]
    fields: dict[int, object]
    marker_repeats: int  # notes whose marker already appeared on the same ticket

    @property
    def writes(self) -> int:
        return sum(self.notes.values()) + sum(self.attachments.values())


def observe(pg: Playground, status_field: int | None) -> Outcome:
    """Read every syncd write the fakes hold; URLs made port-independent."""
    zendesk_base, linear_base = pg.sandbox.url("zendesk"), pg.sandbox.url("linear")

    def plain(text: str) -> str:
        text = MARKER_RE.sub("syncd:*", text.replace(zendesk_base, "ZENDESK").replace(linear_base, "LINEAR"))
        return text

    notes: collections.Counter = collections.Counter()
    tags: dict[int, tuple[str, ...]] = {}
    fields: dict[int, object] = {}
    repeats = 0
    for ticket_id in sorted(pg.zendesk.tickets):
        seen: set[str] = set()
        for comment in pg.zendesk.ticket_comments(ticket_id):
            markers = find_markers(comment["body"])
            if not markers:
                continue
            notes[(ticket_id, plain(comment["body"]))] += 1
            repeats += sum(1 for m in markers if m in seen)
            seen.update(markers)
        ticket = pg.zendesk.ticket(ticket_id)
        tags[ticket_id] = tuple(sorted(ticket["tags"]))
        if status_field is not None:
            fields[ticket_id] = pg.zendesk.field_value(ticket_id, status_field)
    attachments: collections.Counter = collections.Counter()
    for issue_id in list(pg.linear.issues):
        issue = pg.linear.issue(issue_id)
        for attachment in issue.get("attachments") or []:
            attachments[(issue["identifier"], plain(attachment["url"]))] += 1
    return Outcome(notes, attachments, tags, fields, repeats)


@dataclass
class Comparison:
    expected: int
    found: int
    missing: list
    extra: list
    duplicates: int
    state_mismatches: list
    stream_problems: list

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.duplicates or self.state_mismatches or self.stream_problems)


def compare(expected: Outcome, found: Outcome, stream_problems: list | None = None) -> Comparison:
    missing = list((expected.notes - found.notes).elements()) + list(
        (expected.attachments - found.attachments).elements()
    )
    extra = list((found.notes - expected.notes).elements()) + list(
        (found.attachments - expected.attachments).elements()
    )
    state: list[tuple[int, object, object]] = [
        (t, expected.tags.get(t), found.tags.get(t)) for t in expected.tags if expected.tags[t] != found.tags.get(t)
    ]
    state += [
        (t, expected.fields.get(t), found.fields.get(t))
        for t in expected.fields
        if expected.fields[t] != found.fields.get(t)
    ]
    return Comparison(
        expected.writes, found.writes, missing, extra, found.marker_repeats, state, list(stream_problems or [])
    )


def check_stream_links(stream: Stream, world: World, outcome: Outcome) -> list[str]:
    """Every pair the stream linked shows exactly one "Linked to" note and one attachment."""
    problems = []
    for ticket, issue in sorted(stream.links):
        tid, key = world.tickets[ticket], world.keys[issue]
        notes = sum(n for (t, text), n in outcome.notes.items() if t == tid and text.startswith(f"Linked to {key}:"))
        url = f"ZENDESK/agent/tickets/{tid}"
        shown = outcome.attachments.get((key, url), 0)
        if notes != 1 or shown != 1:
            problems.append(f"ticket {tid} ↔ {key}: {notes} link note(s), {shown} attachment(s); expected 1 and 1")
    return problems


# --- the runs -----------------------------------------------------------------------------------


def _playground(workdir: Path, rng_seed: int) -> Playground:
    return Playground(workdir, rng_seed=rng_seed, trackers=("linear",))


FAULTS = ("429", "500", "502", "503", "timeout", "reset", "truncate", "non_json", "wrong_shape")


@dataclass
class SettledRun:
    """An in-process run that catches up after every batch."""

    outcome: Outcome
    stream_problems: list[str]
    requests: int  # what syncd sent (every attempt, retries included)
    faults: int  # faults the fakes injected
    cycles: int
    quarantine_open: int
    dead: int


def settled_run(
    workdir: Path,
    stream: Stream,
    *,
    rng_seed: int = 7,
    job_polls: int = 1,
    fault_rate: float = 0.0,
    store_env: dict[str, str] | None = None,
) -> SettledRun:
    """Play the stream with one uninterrupted in-process syncd, catching up after each batch.

    ``store_env`` adds store settings to the environment (a PostgreSQL store).
    With ``fault_rate``, every endpoint of both fakes answers that share of
    syncd's requests with a fault, the kinds in :data:`FAULTS` equally likely
    (the people's own changes go through unharmed). A virtual clock moves an
    hour between cycles that leave work behind, so backoffs expire without
    waiting; request timeouts are real (half a second).
    """
    from syncd.sandbox.server import FaultRule

    with _playground(workdir, rng_seed) as pg:
        pg.env.update(store_env or {})  # SYNCD_STORE__URL...: the same run on PostgreSQL
        pg.zendesk.job_polls = job_polls
        world = World(pg, stream.tickets, stream.issues)
        services = (pg.zendesk, pg.linear)
        rules: dict[object, list[FaultRule]] = {service: [] for service in services}
        if fault_rate:
            share = fault_rate / len(FAULTS)
            for service in services:
                for n, kind in enumerate(FAULTS):
                    # Each rule sees only what the ones before it let through.
                    rate = share / (1 - share * n)
                    rules[service].append(FaultRule(kind, ".*", rate, None, 0.0, 0.6))
            for name in ("ZENDESK", "LINEAR"):
                pg.env[f"SYNCD_CONNECTORS__{name}__TIMEOUT"] = "0.5"
        clock = _VirtualClock()
        cycles = 0
        with pg.app(clock=clock) as app:

            def settle() -> None:
                nonlocal cycles
                for service in services:
                    service.faults[:] = rules[service]
                try:
                    cycles += _settle_in_process(app, clock)
                finally:
                    for service in services:
                        service.faults.clear()

            settle()
            serial = 0
            for batch in stream.batches:
                for change in batch:
                    serial += 1
                    world.apply(change, serial)
                settle()
            requests = sum(c.http.stats.requests for c in app.connectors.values())
            quarantined = len(app.store.list_quarantine())
            dead = app.store.outbox_counts()["dead"]
        outcome = observe(pg, pg.seed.linked_issue_status_field_id if pg.seed else None)
        return SettledRun(
            outcome,
            check_stream_links(stream, world, outcome),
            requests,
            sum(r.fired for rs in rules.values() for r in rs),
            cycles,
            quarantined,
            dead,
        )


def reference_run(
    workdir: Path, stream: Stream, *, rng_seed: int = 7, job_polls: int = 1
) -> tuple[Outcome, list[str], int]:
    """Play the stream with one uninterrupted in-process syncd; returns (outcome, stream problems, requests)."""
    run = settled_run(workdir, stream, rng_seed=rng_seed, job_polls=job_polls)
    return run.outcome, run.stream_problems, run.requests


class _VirtualClock:
    def __init__(self) -> None:
        from datetime import datetime, timezone

        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def _settle_in_process(app, clock: _VirtualClock, limit: int = 60) -> int:
    """Cycle until a cycle sees no change, fails nothing and leaves no write undelivered."""
    for n in range(1, limit + 1):
        report = app.engine.cycle()
        counts = app.store.outbox_counts()
        if report.ok and not any(p.changed for p in report.polls) and not counts["pending"] and not counts["sending"]:
            return n
        clock.advance(3600)
    raise RuntimeError("syncd did not settle: " + report.summary())


class DaemonUnderFire:
    """``syncd run`` as a subprocess, killed at the k-th request it sends and restarted."""

    def __init__(self, pg: Playground, rng: random.Random, log_path: Path, env: dict[str, str]):
        self.pg = pg
        self.rng = rng
        self.env = env
        self.log = open(log_path, "a")
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.batch_kills = 0  # kills right after a batch of writes (several tracker writes, or several tickets) landed
        self.terms = 0
        self.hups = 0
        self.restarts = 0
        self.crashes: list[str] = []
        self.planned = 0  # kills still to do in this batch
        self.window = 1  # a kill lands on one of the next ``window`` requests syncd sends
        self._kill_at: int | None = None  # kill when the request count reaches this
        self._killed: subprocess.Popen | None = None  # the process the last SIGKILL went to
        self._requests = 0  # requests syncd sent since the last (re)start
        self._feeds: collections.Counter[str] = collections.Counter()  # feed requests since the last (re)start or mark
        self._zendesk_auth = (
            "Basic "
            + base64.b64encode(f"{SANDBOX_EMAIL}/token:{pg.env['SYNCD_CONNECTORS__ZENDESK__TOKEN']}".encode()).decode()
        )
        self._linear_auth = pg.env["SYNCD_CONNECTORS__LINEAR__API_KEY"]
        pg.zendesk.listeners.append(self._listener)
        pg.linear.listeners.append(self._listener)

    # -- the sandbox sees every request -------------------------------------------------

    def _listener(self, endpoint: str, request, response) -> None:
        auth = request.headers.get("authorization")
        if auth not in (self._zendesk_auth, self._linear_auth):
            return  # a person, not syncd
        with self.lock:
            self._requests += 1
            if ZENDESK_FEED in endpoint:
                self._feeds["zendesk"] += 1
            elif endpoint.endswith(" " + LINEAR_FEED):
                self._feeds["linear"] += 1
            # An armed kill lands on a batch of writes as soon as one comes (several Linear
            # writes in one document, or a Zendesk Update Many of several tickets): the batch
            # has been applied, syncd never hears its answer.
            batch = endpoint.endswith(" " + BATCH_WRITES) or (
                request.method == "PUT" and endpoint.endswith(BULK_WRITE) and _bulk_size(request) >= 2
            )
            due = self._kill_at is not None and (self._requests >= self._kill_at or batch)
            if due and self.proc is not None:
                # The request has been applied; syncd never hears the answer.
                self._kill_at = None
                os.kill(self.proc.pid, signal.SIGKILL)
                self._killed = self.proc
                self.kills += 1
                self.batch_kills += int(batch)

    # -- process control -------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            self._requests = 0
            self._feeds.clear()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run"], env=self.env, stdout=self.log, stderr=self.log
            )

    def plan_kills(self, count: int, window: int) -> None:
        """SIGKILL ``count`` times, each at a random one of the next ``window`` requests syncd sends."""
        with self.lock:
            self.planned, self.window = count, max(1, window)
        self._arm()

    def _arm(self) -> None:
        with self.lock:
            if self.planned and self._kill_at is None:
                self.planned -= 1
                self._kill_at = self._requests + self.rng.randint(1, self.window)

    @property
    def kills_pending(self) -> bool:
        return bool(self.planned or self._kill_at is not None)

    def reap(self) -> bool:
        """Restart the daemon if it has exited; True if it did. Any exit but ours is a crash."""
        proc = self.proc
        if proc is None or proc.poll() is None:
            return False
        code = proc.returncode
        if code not in (-signal.SIGKILL, 0):
            self.crashes.append(f"syncd run exited with status {code}")
        self.restarts += 1
        self.start()
        self._arm()
        return True

    def wait_until_serving(self, timeout: float = 30.0) -> bool:
        """Whether the daemon has sent a request since its (re)start, within ``timeout``.

        A signal sent while the interpreter is still starting, before Python
        runs any of syncd, meets the operating system's default action; an
        ops tool signals a service that is up, and so does the driver.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self._requests > 0:
                    return True
            if self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def hup(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.wait_until_serving():
            self.proc.send_signal(signal.SIGHUP)
            self.hups += 1

    def term(self, timeout: float) -> None:
        """SIGTERM: the daemon must finish the step in hand and exit 0 within ``timeout``."""
        proc = self.proc
        if proc is None or proc.poll() is not None or not self.wait_until_serving():
            return
        with self.lock:
            if self._killed is proc:
                return  # a planned SIGKILL landed first: reap() restarts it, as after any kill
            if self._kill_at is not None:  # not during shutdown: the kill waits for the restart
                self._kill_at = None
                self.planned += 1
        proc.send_signal(signal.SIGTERM)
        self.terms += 1
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crashes.append(f"SIGTERM: still running after {timeout:.0f}s")
            proc.kill()
            proc.wait()
            return
        if code != 0:
            self.crashes.append(f"SIGTERM: exit status {code}")

    def feeds_since_mark(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(self._feeds)

    def mark(self) -> None:
        with self.lock:
            self._feeds.clear()

    def stop(self) -> None:
        self.term(timeout=60)
        self.log.close()


@dataclass
class ChaosResult:
    seed: int
    changes: int
    batches: int
    kills: int
    terms: int
    hups: int
    comparison: Comparison
    batch_kills: int = 0
    crashes: list[str] = field(default_factory=list)
    reference_requests: int = 0
    chaos_requests: int = 0

    @property
    def ok(self) -> bool:
        return self.comparison.ok and not self.crashes

    def summary(self) -> str:
        c = self.comparison
        return (
            f"seed={self.seed} changes={self.changes} batches={self.batches} kills={self.kills} "
            f"(after a batch of writes: {self.batch_kills}) "
            f"sigterms={self.terms} sighups={self.hups} writes expected={c.expected} found={c.found} "
            f"duplicates={c.duplicates + len(c.extra)} missing={len(c.missing)} "
            f"state mismatches={len(c.state_mismatches)} stream-check problems={len(c.stream_problems)} "
            f"crashes={len(self.crashes)} requests reference={self.reference_requests} "
            f"chaos={self.chaos_requests}"
        )


def chaos_run(
    workdir: Path,
    *,
    seed: int,
    changes: int,
    kills: int,
    batch_size: int = 30,
    tickets: int = 40,
    issues: int = 12,
    rng_seed: int = 7,
    settle_timeout: float = 90.0,
    job_polls: int = 1,
    say: Callable[[str], None] = print,
) -> ChaosResult:
    """Generate the stream, play it uninterrupted for reference, then under fire; compare.

    ``job_polls``: how often the Zendesk fake answers "working" for a bulk
    update's job before "completed" (each costs syncd a real one-second wait).
    """
    workdir = Path(workdir)
    stream = generate(seed, changes=changes, batch_size=batch_size, tickets=tickets, issues=issues)
    say(
        f"chaos: seed {seed}: {stream.changes} changes in {len(stream.batches)} batches, "
        f"{kills} kills planned (replay with --seed {seed})"
    )
    expected, reference_problems, reference_requests = reference_run(
        workdir / "reference", stream, rng_seed=rng_seed, job_polls=job_polls
    )
    say(f"chaos: reference run wrote {expected.writes} notes and attachments")

    rng = random.Random(seed ^ 0x5EED)
    # Kills per batch: spread evenly, the remainder at random.
    per_batch = [kills // len(stream.batches)] * len(stream.batches)
    for i in rng.sample(range(len(stream.batches)), kills % len(stream.batches)):
        per_batch[i] += 1
    with _playground(workdir / "chaos", rng_seed) as pg:
        pg.zendesk.job_polls = job_polls
        world = World(pg, stream.tickets, stream.issues)
        env = {
            **pg.cli_env(),
            "SYNCD_DAEMON__POLL_INTERVAL": "0.1",
            "SYNCD_DAEMON__JITTER": "0",
            "SYNCD_DAEMON__HEALTH_ADDRESS": "",
            "SYNCD_DAEMON__SHUTDOWN_TIMEOUT": "10",
            "SYNCD_LOG__LEVEL": "warning",
            "SYNCD_LOG__FORMAT": "json",
        }
        daemon = DaemonUnderFire(pg, rng, workdir / "chaos-daemon.log", env)
        daemon.start()
        try:
            _settle(pg, daemon, settle_timeout)
            serial = 0
            for number, batch in enumerate(stream.batches):
                # A reload and a clean stop early on, then now and then.
                forced = {1: "hup", 2: "term"}.get(number)
                signal_at = (
                    {rng.randrange(len(batch)): forced or rng.choice(("hup", "term"))}
                    if forced or rng.random() < 0.15
                    else {}
                )
                # Most kills land while the batch is being applied, some while syncd catches up.
                daemon.plan_kills(per_batch[number], window=max(4, len(batch)))
                for position, change in enumerate(batch):
                    serial += 1
                    world.apply(change, serial)
                    daemon.reap()
                    if signal_at.get(position) == "hup":
                        daemon.hup()
                    elif signal_at.get(position) == "term":
                        daemon.term(timeout=15)
                        daemon.reap()
                deadline = time.monotonic() + settle_timeout
                while daemon.kills_pending:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"batch {number}: planned kills never happened")
                    daemon.reap()
                    time.sleep(0.02)
                _settle(pg, daemon, settle_timeout)
                if (number + 1) % 10 == 0:
                    say(f"chaos: {number + 1}/{len(stream.batches)} batches, {daemon.kills} kills so far")
        finally:
            daemon.stop()
        for _ in range(2):  # the clean final runs the issue asks for
            done = subprocess.run(
                [sys.executable, "-m", "syncd", "once"], env=env, capture_output=True, text=True, timeout=300
            )
            # 3: nothing failed, writes still wait (a backoff from the faults): not a crash.
            if done.returncode not in (0, 3):
                daemon.crashes.append(f"final syncd once: status {done.returncode}: {done.stderr.strip()[-300:]}")
        found = observe(pg, pg.seed.linked_issue_status_field_id if pg.seed else None)
        stream_problems = check_stream_links(stream, world, found)
        stream_problems += [f"reference run: {p}" for p in reference_problems]
        log_text = (workdir / "chaos-daemon.log").read_text()
        if "Traceback" in log_text:
            daemon.crashes.append("a traceback in the daemon's log: " + log_text[log_text.index("Traceback") :][:400])
        result = ChaosResult(
            seed,
            stream.changes,
            len(stream.batches),
            daemon.kills,
            daemon.terms,
            daemon.hups,
            compare(expected, found, stream_problems),
            daemon.batch_kills,
            daemon.crashes,
            reference_requests,
            pg.sandbox.total_requests(),
        )
    say("chaos: " + result.summary())
    return result


def _settle(pg: Playground, daemon: DaemonUnderFire, timeout: float) -> None:
    """Wait until syncd has read both feeds several times since now and its
    outbox holds nothing undelivered."""
    from syncd.store import Store

    daemon.mark()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.reap():
            daemon.mark()
        feeds = daemon.feeds_since_mark()
        # Three reads: a poll that began after the mark has finished (a poll
        # may read two pages) and the delivery after it has run.
        if feeds["zendesk"] >= 3 and feeds["linear"] >= 3 and pg.store_path.exists():
            try:
                with Store(pg.store_path, readonly=True) as store:
                    counts = store.outbox_counts()
            except Exception:  # the daemon may be creating or migrating it
                counts = {"pending": 1}
            if not counts.get("pending") and not counts.get("sending"):
                if counts.get("dead"):
                    raise RuntimeError(f"{counts['dead']} action(s) went to dead letter")
                return
            daemon.mark()
        time.sleep(0.05)
    raise RuntimeError(f"syncd did not catch up within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--batch", type=int, default=40, help="changes per batch (syncd catches up between)")
    parser.add_argument("--tickets", type=int, default=150)
    parser.add_argument("--issues", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: a new random seed)")
    parser.add_argument("--workdir", default=None, help="keep the playgrounds and the daemon log here")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="instead of kills: play the stream in-process with this share of requests "
        "faulted (0.1 = 10%%) and compare with a clean run",
    )
    args = parser.parse_args(argv)
    _quiet()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    with tempfile.TemporaryDirectory(prefix="syncd-chaos-") as tmp:
        workdir = Path(args.workdir or tmp)
        if args.fault_rate is not None:
            return faults_main(workdir, seed, args)
        started = time.monotonic()
        result = chaos_run(
            workdir,
            seed=seed,
            changes=args.changes,
            kills=args.kills,
            batch_size=args.batch,
            tickets=args.tickets,
            issues=args.issues,
        )
        print(f"chaos: {'PASS' if result.ok else 'FAIL'} in {time.monotonic() - started:.0f}s; seed {seed}")
        _print_problems(result)
    return 0 if result.ok else 1


def _quiet() -> None:
    """The in-process runs log like syncd does; only errors matter on this console."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def faults_main(workdir: Path, seed: int, args: argparse.Namespace) -> int:
    stream = generate(seed, changes=args.changes, batch_size=args.batch, tickets=args.tickets, issues=args.issues)
    print(
        f"faults: seed {seed}: {stream.changes} changes in {len(stream.batches)} batches, "
        f"fault rate {args.fault_rate:.0%} (replay with --seed {seed})"
    )
    clean = settled_run(workdir / "clean", stream, job_polls=0)
    faulty = settled_run(workdir / "faulty", stream, job_polls=0, fault_rate=args.fault_rate)
    c = compare(clean.outcome, faulty.outcome, faulty.stream_problems + clean.stream_problems)
    ratio = faulty.requests / clean.requests
    ok = c.ok and not faulty.quarantine_open and not faulty.dead
    print(
        f"faults: {faulty.faults} faults injected in {faulty.requests} requests "
        f"({faulty.faults / faulty.requests:.1%}); clean run {clean.requests} requests; ratio {ratio:.2f}; "
        f"writes expected {c.expected}, found {c.found}, missing {len(c.missing)}, extra {len(c.extra)}, "
        f"state mismatches {len(c.state_mismatches)}; quarantined {faulty.quarantine_open}, "
        f"dead letters {faulty.dead}; {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def _print_problems(result: ChaosResult, limit: int = 10) -> None:
    c = result.comparison
    for title, items in (
        ("missing", c.missing),
        ("extra", c.extra),
        ("state", c.state_mismatches),
        ("stream check", c.stream_problems),
        ("crash", result.crashes),
    ):
        for item in items[:limit]:
            print(f"  {title}: {item}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
