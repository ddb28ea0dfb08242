"""The service: scheduling, signals, health and metrics.

Each connector is polled on its own interval (with jitter so that a fleet of
daemons does not poll in step), and the outbox is delivered after every poll.
SIGTERM and SIGINT finish the step in hand and exit 0: a poll stops after
the page it is committing, delivery after the action it is recording. If
that takes longer than ``daemon.shutdown_timeout`` (a service answering
slowly, a long Retry-After), the process exits 0 anyway: everything done so
far is committed, and what was in flight is found again at the next start
(a page is replayed, a write is looked for by its marker). SIGHUP reloads
the configuration between steps, keeping the running one if the new one is
bad or changes what cannot switch live (see :func:`unswitchable`); the store
and its outbox carry over untouched.

A connector whose credentials are refused is paused with one log line and
tried again with a single cheap check at a slow pace, not hammered; the
other connectors go on. A connector whose service asked for a longer wait
than ``max_wait`` (a rate limit) is parked until then: not polled, nothing
delivered to it, one info log line, the others go on (see
:mod:`syncd.ratelimits`); /healthz, /metrics and ``syncd status`` show it.
Each connector's state is written to the store, so ``syncd status`` shows
it next to the outbox backlog.

The health address serves /healthz, /metrics and, at /, a status page (the
facts of :mod:`syncd.status`, refreshing itself) to loopback clients only:
it has no login. An address that cannot be bound stops the start (exit 2).
"""

from __future__ import annotations

import errno
import json
import os
import random
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from syncd.app import App, handoff_mappings
from syncd.config import Settings
from syncd.delivery import DeliveryReport
from syncd.doorbell import MIN_GAP, Doorbell, Listener
from syncd.errors import AuthError, ConfigError, StoreFull, SyncdError
from syncd.page import PollReport
from syncd.ratelimits import Wait
from syncd.records import format_time
from syncd.status import gather, loopback, render_html

log = structlog.get_logger("syncd.daemon")

AUTH_RETRY_SECONDS = 300.0
# The daemon's view in the store is rewritten when it changes, and at least this often
# (``syncd status`` shows when the daemon last wrote it).
PUBLISH_EVERY_SECONDS = 60.0


@dataclass
class ConnectorState:
    next_poll: float = 0.0
    last_ok: float | None = None
    last_error: str | None = None
    paused_auth: bool = False
    polls: int = 0
    rate_limited_until: datetime | None = None  # parked for a rate limit until then (the app's clock)
    rung_at: float | None = None  # when a webhook last brought its poll forward (the daemon's clock)


@dataclass
class ReloadOutcome:
    at: float
    outcome: str  # "applied" or "refused"
    reason: str | None = None


@dataclass
class Health:
    started: float = field(default_factory=time.time)
    connectors: dict[str, ConnectorState] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    last_reload: ReloadOutcome | None = None

    def as_dict(self) -> dict:
        ok = all(not s.last_error for s in self.connectors.values())
        return {
            "status": "ok" if ok else "degraded",
            "uptime_seconds": round(time.time() - self.started, 1),
            "cycles": self.cycles,
            "outbox": self.outbox,
            "connectors": {
                name: {
                    "last_ok": _iso(s.last_ok),
                    "last_error": s.last_error,
                    "paused": s.paused_auth,
                    "polls": s.polls,
                    "rate_limited_until": format_time(s.rate_limited_until),
                }
                for name, s in self.connectors.items()
            },
            # A refused reload leaves the daemon healthy on its running configuration: shown, not a 503.
            "last_reload": None
            if self.last_reload is None
            else {
                "at": _iso(self.last_reload.at),
                "outcome": self.last_reload.outcome,
                "reason": self.last_reload.reason,
            },
        }


def _bind_reason(exc: OSError) -> str:
    """Why the health address could not be bound, and what to do, in words."""
    if exc.errno == errno.EADDRINUSE:
        return "the port is already in use (another syncd, or another program); stop it or choose another port"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges); choose a port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address; use 127.0.0.1, 0.0.0.0 or one of its own addresses"
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror}); use an IP address"
    return exc.strerror or str(exc)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts else None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter("syncd_polls", "Polls per connector", ["connector", "result"], registry=self.registry)
        self.records = Counter("syncd_records", "Records read per connector", ["connector"], registry=self.registry)
        self.delivered = Counter("syncd_actions_delivered", "Outbox actions delivered", registry=self.registry)
        self.failed = Counter("syncd_actions_failed", "Outbox attempts failed", registry=self.registry)
        self.outbox = Gauge("syncd_outbox", "Outbox actions by state", ["state"], registry=self.registry)
        self.privacy_rewritten = Counter(
            "syncd_privacy_rewritten", "Texts syncd made opaque in a place that turned public", registry=self.registry
        )
        self.privacy_skipped = Counter(
            "syncd_privacy_rewrite_skipped",
            "Texts in a place that turned public left as they were: someone edited them after syncd wrote them",
            registry=self.registry,
        )
        self.requests = Counter(
            "syncd_http_requests", "HTTP requests sent per connector", ["connector"], registry=self.registry
        )
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When each connector's last poll went through (Unix time)",
            ["connector"],
            registry=self.registry,
        )
        self.cycle_seconds = Histogram(
            "syncd_cycle_duration_seconds",
            "How long a step took: the polls that were due, then delivery",
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.quarantine = Gauge(
            "syncd_quarantine_records", "Records set aside because they could not be read", registry=self.registry
        )
        self.rate_limit_waits = Counter(
            "syncd_rate_limit_waits",
            "Rate-limit waits begun per connector (parked: nothing sent until the service's limit ends)",
            ["connector"],
            registry=self.registry,
        )
        self.rate_limit_seconds = Counter(
            "syncd_rate_limit_parked_seconds",
            "Seconds connectors were parked for rate limits (counted when a wait begins)",
            ["connector"],
            registry=self.registry,
        )

        self.reloads = Counter(
            "syncd_reloads",
            "Configuration reloads (SIGHUP) by outcome: applied or refused",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("applied", "refused"):
            self.reloads.labels(outcome)
        self.last_reload_refused = Gauge(
            "syncd_last_reload_refused",
            "1 when the last reload was refused and the running configuration kept (see /healthz for why), else 0",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "syncd_webhooks",
            "Webhooks received per connector by result: rang (polled at once), unsigned, bad_signature, "
            "stale (all three refused with 401, nothing polled), unknown (no connector takes them there)",
            ["connector", "result"],
            registry=self.registry,
        )
        self.last_reload_time = Gauge(
            "syncd_last_reload_timestamp_seconds", "When the last reload was asked for", registry=self.registry
        )


def unswitchable(old: Settings, new: Settings, waiting: Callable[[str], int]) -> list[str]:
    """What a reload from ``old`` to ``new`` cannot switch in the running daemon, one phrase each.

    The store and the health endpoint's and webhook listener's sockets are opened once, at start; a
    connector's kind or URL is the account its cursor and stored records belong
    to; the helpdesk is the side every link hangs on; logging is set up at
    start. A connector may be added (its first sync begins) or removed when no
    write to it waits in the outbox (``waiting``: unfinished writes per connector).
    Everything else (credentials, intervals, timeouts, budgets, repositories,
    projects and teams followed, mappings, tags) is applied by the reload.
    """
    changes = []
    if new.store_path != old.store_path:
        changes.append(f"store.path ({old.store_path} -> {new.store_path})")
    if (new.store.url, new.store.schema_name) != (old.store.url, old.store.schema_name):
        changes.append("store.url (the database the replicas share)")
    if new.daemon.health_address != old.daemon.health_address:
        changes.append(
            f"daemon.health_address ({old.daemon.health_address or 'off'} -> {new.daemon.health_address or 'off'})"
        )
    if new.daemon.webhook_address != old.daemon.webhook_address:
        changes.append(
            f"daemon.webhook_address ({old.daemon.webhook_address or 'off'} -> {new.daemon.webhook_address or 'off'})"
        )
    if new.sync.helpdesk != old.sync.helpdesk:
        changes.append(f"sync.helpdesk ({old.sync.helpdesk} -> {new.sync.helpdesk})")
    for name in sorted(old.connectors.keys() & new.connectors.keys()):
        was, now = old.connectors[name], new.connectors[name]
        if was.kind != now.kind:
            changes.append(f"connectors.{name}.kind ({was.kind} -> {now.kind})")
        elif was.url.rstrip("/") != now.url.rstrip("/"):
            changes.append(f"connectors.{name}.url ({was.url} -> {now.url})")
    for name in sorted(old.connectors.keys() - new.connectors.keys()):
        if count := waiting(name):
            changes.append(f"connectors.{name} removed while {count} write(s) to it wait in the outbox")
    for key in ("level", "format"):
        if getattr(new.log, key) != getattr(old.log, key):
            changes.append(f"log.{key} ({getattr(old.log, key)} -> {getattr(new.log, key)})")
    return changes


class Daemon:
    def __init__(
        self,
        load_settings: Callable[[], Settings],
        build: Callable[[Settings], App],
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        auth_retry: float = AUTH_RETRY_SECONDS,
        exit: Callable[[int], None] = os._exit,
    ):
        self.load_settings = load_settings
        self.build = build
        self.app = build(load_settings())
        self.clock = clock
        self.auth_retry = auth_retry
        self._exit = exit
        self.stop_event = threading.Event()
        self.reload_requested = False
        self._watchdog: threading.Timer | None = None
        self._delivery_paused_at: dict[str, float] = {}
        self._published: dict | None = None
        self._published_at = 0.0
        self._requests_seen: dict[str, int] = {}
        self.health = Health()
        self.metrics = Metrics()
        # Woken by a stop, a reload or a webhook's ring (the ring brings a poll forward).
        self._wake = threading.Event()
        self._rung: set[str] = set()
        self._rung_lock = threading.Lock()
        self._sleep = sleep or (lambda s: self._wake.wait(s))
        self._http: ThreadingHTTPServer | None = None
        self._listener: Listener | None = None
        self._doorbell: Doorbell | None = None
        self.next_presence = 0.0  # the first step checks linked issues; then every presence_interval
        self._waits_begun = 0  # rate-limit waits begun in the step in hand (for its log line)
        self._slept = 0.0  # seconds slept in place for rate limits in the step in hand
        # Replicas: on a PostgreSQL store any number of daemons run; each feed is polled by the one
        # holding its lease (docs/scaling.md). On SQLite the store's lock allows one daemon: no leases.
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self.leasing = self.app.store.backend == "postgresql"
        self.held: set[str] = set()  # feeds whose lease this replica holds
        for name in self.app.connectors:
            self.health.connectors[name] = ConnectorState()
        self._wire()

    def _wire(self) -> None:
        self.app.engine.stop_requested = self.stopping
        store = self.app.store
        if self.leasing:
            # Replicas sharing a PostgreSQL store: outbox claims last as long as a feed's lease.
            store.replica = self.replica
            store.claim_seconds = self.app.settings.store.lease_seconds
        self.app.engine.parking.listeners.append(self._on_rate_limit)
        for connector in self.app.connectors.values():
            connector.http.wait_listeners.append(self._on_slept)

    def _on_slept(self, seconds: float) -> None:
        """A rate-limit wait slept in place (shorter than max_wait), for the cycle's log line."""
        self._slept += seconds

    def _on_rate_limit(self, wait: Wait, seconds: float, begun: bool) -> None:
        if begun:
            self._waits_begun += 1
            self.metrics.rate_limit_waits.labels(wait.connector).inc()
        self.metrics.rate_limit_seconds.labels(wait.connector).inc(seconds)

    def stopping(self) -> bool:
        """A stop (not a reload) was asked for: finish what is in hand and go."""
        return self.stop_event.is_set() and not self.reload_requested

    # -- signals --------------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: object) -> None:
        timeout = self.app.settings.daemon.shutdown_timeout
        log.info("stopping after the step in hand", signal=signal.Signals(signum).name, shutdown_timeout=timeout)
        self.stop_event.set()
        self._wake.set()
        if self._watchdog is None:
            self._watchdog = threading.Timer(timeout, self._overdue, args=(timeout,))
            self._watchdog.daemon = True
            self._watchdog.start()

    def _overdue(self, timeout: float) -> None:
        """The step in hand outlived shutdown_timeout: leave now; nothing committed is lost."""
        log.warning(
            "shutdown_timeout passed with a step unfinished; exiting now. What was in flight "
            "resumes at the next start (pages replay, writes are looked for by marker)",
            shutdown_timeout=timeout,
        )
        sys.stderr.flush()
        self._exit(0)

    def _on_hup(self, signum: int, frame: object) -> None:
        self.reload_requested = True
        self.stop_event.set()  # the loop clears it again
        self._wake.set()

    # -- loop --------------------------------------------------------------------------------

    def interval(self, name: str) -> float:
        config = self.app.connectors[name].config
        return float(config.poll_interval or self.app.settings.daemon.poll_interval)

    def ring(self, name: str) -> None:
        """A genuine webhook of ``name``'s service: poll its feed at the next step, now
        (see :mod:`syncd.doorbell`). Called from the listener's thread."""
        with self._rung_lock:
            self._rung.add(name)
        self._wake.set()

    def _take_rings(self, now: float) -> None:
        """Bring forward the polls webhooks rang for (at most one per doorbell.MIN_GAP seconds a feed)."""
        with self._rung_lock:
            rung, self._rung = self._rung, set()
        for name in rung:
            state = self.health.connectors.get(name)
            if state is None or state.next_poll <= now or state.paused_auth or state.rate_limited_until is not None:
                continue  # due anyway, or waiting for its credentials or a rate limit: a webhook changes nothing
            if state.rung_at is not None and now - state.rung_at < MIN_GAP:
                state.next_poll = min(state.next_poll, state.rung_at + MIN_GAP)
                continue
            state.rung_at = now
            state.next_poll = now

    def run(self) -> int:
        try:
            self.start_health_server()
            self.start_webhook_listener()
        except BaseException:
            self.stop_health_server()
            self.app.close()
            raise
        log.info("syncd running", connectors=list(self.app.connectors), store=str(self.app.settings.store_path))
        try:
            while True:
                if self.reload_requested:
                    self._reload()
                if self.stop_event.is_set():
                    if self.reload_requested:
                        continue
                    break
                self.step()
                self._sleep(max(0.05, self._time_to_next()))
                self._wake.clear()  # a stop or reload is seen at the loop's top; a ring in the next step
                if self.stop_event.is_set() and self.reload_requested:
                    self.stop_event.clear()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.stop_webhook_listener()
            self.stop_health_server()
            if self.leasing:
                try:
                    self.app.store.release_leases(self.replica)  # the others take over at once
                except SyncdError as exc:
                    log.warning("could not hand the feeds back; they pass on at their expiry", error=str(exc))
            self.app.close()
        log.info("syncd stopped")
        return 0

    def _time_to_next(self) -> float:
        now = self.clock()
        with self._rung_lock:
            if self._rung:
                return 0.0
        wait = min((s.next_poll for s in self.health.connectors.values()), default=now + 60) - now
        # A replica wakes often enough to renew its leases well before they lapse.
        return min(wait, self._lease_seconds() / 4) if self.leasing else wait

    def step(self) -> None:
        """Poll every connector that is due, then deliver the outbox."""
        started = self.clock()
        try:
            self._step()
        finally:
            self.metrics.cycle_seconds.observe(max(0.0, self.clock() - started))

    def _step(self) -> None:
        if self.leasing:
            self._renew()
        now = self.clock()
        jitter = self.app.settings.daemon.jitter
        self._take_rings(now)
        self._waits_begun, self._slept = 0, 0.0
        polled: list[PollReport] = []
        for name, state in self.health.connectors.items():
            if self.stopping():
                return
            if state.next_poll > now:
                continue
            if self._parked(name, state, now):
                continue
            if state.paused_auth and not self._credentials_back(name, state):
                state.next_poll = now + self.auth_retry
                continue
            if self.leasing and not self._lease(name):
                # Another replica polls it; look again soon, to take over within the lease's expiry.
                state.next_poll = now + min(self.interval(name), self._lease_seconds() / 4)
                continue
            try:
                report = self._poll(name)
            finally:
                self.app.store.fence = None
            polled.append(report)
            state.polls += 1
            self.metrics.records.labels(name).inc(report.records)
            if report.error:
                state.last_error = report.error
                state.paused_auth = report.auth_failed
                self.metrics.polls.labels(name, "error").inc()
                self._note_poll(name, report.error)
            elif report.rate_limited_until is not None:
                state.last_error = None  # the service's flow control, not a failure
                self.metrics.polls.labels(name, "rate_limited").inc()
            else:
                state.last_error = None
                state.last_ok = time.time()
                self.metrics.polls.labels(name, "ok").inc()
                self.metrics.last_success.labels(name).set(self.app.engine.clock().timestamp())
                self._note_poll(name, None)
            interval = self.auth_retry if state.paused_auth else self.interval(name)
            state.next_poll = self.clock() + interval * (1 + random.uniform(-jitter, jitter))
            self._parked(name, state, self.clock())
        if self.stopping():
            return
        self._retry_paused_delivery()
        self._check_presence()
        try:
            delivery = self.app.engine.deliver()
        except StoreFull as exc:
            # The transaction in hand rolled back; a write already sent is found by its marker
            # at the next attempt. A damaged store (StoreUnusable) ends the run with its line instead.
            log.error("the store's disk is full; delivery resumes at the next step", error=str(exc))
            return
        for name, state in self.health.connectors.items():
            self._parked(name, state, self.clock())  # a write may have met the limit
        self.metrics.delivered.inc(delivery.done + delivery.already)
        self.metrics.failed.inc(delivery.failed + delivery.dead)
        self.metrics.privacy_rewritten.inc(delivery.privacy_rewritten)
        self.metrics.privacy_skipped.inc(delivery.privacy_kept)
        self.health.outbox = self.app.store.outbox_counts()
        for state_name, count in self.health.outbox.items():
            self.metrics.outbox.labels(state_name).set(count)
        for name, connector in self.app.connectors.items():
            # Counted on from what the client had counted at the last step (0 after a reload).
            sent = connector.http.stats.requests
            self.metrics.requests.labels(name).inc(max(0, sent - self._requests_seen.get(name, 0)))
            self._requests_seen[name] = sent
        try:
            self.metrics.quarantine.set(self.app.store.stats()["quarantine_open"])
        except SyncdError as exc:
            log.warning("could not read the quarantine's size", error=str(exc))
        self.health.cycles += 1
        self._publish()
        self._log_cycle(polled, delivery)

    def _log_cycle(self, polled: list[PollReport], delivery: DeliveryReport) -> None:
        """One info line per cycle: what changed, what was delivered or failed, who waits for a rate limit."""
        parked = {
            name: format_time(s.rate_limited_until)
            for name, s in self.health.connectors.items()
            if s.rate_limited_until
        }
        log.info(
            "cycle",
            polled=[r.connector for r in polled],
            changed=sum(r.changed for r in polled),
            links=sum(r.links for r in polled),
            planned=sum(r.actions for r in polled),
            delivered=delivery.done + delivery.already,
            failed=delivery.failed + delivery.dead,
            dead=delivery.dead,
            poll_errors=sum(1 for r in polled if r.error),
            rate_limit_waits=self._waits_begun,
            rate_limit_slept_seconds=round(self._slept, 1),
            waiting_for_rate_limit=parked,
            pending=self.health.outbox.get("pending", 0) + self.health.outbox.get("sending", 0),
        )

    def _note_poll(self, name: str, error: str | None) -> None:
        try:
            self.app.store.note_poll(name, self.app.engine.clock(), error)
        except SyncdError as exc:
            log.warning("could not record the poll in the store", connector=name, error=str(exc))

    def _lease_seconds(self) -> float:
        return self.app.settings.store.lease_seconds

    def _lease(self, name: str) -> bool:
        """Take or renew the lease on ``name``'s feed; False while another replica holds it."""
        feed = f"poll:{name}"
        try:
            held = self.app.store.acquire_lease(feed, self.replica, self._lease_seconds())
        except SyncdError as exc:
            log.warning("could not take the feed's lease; not polling it now", connector=name, error=str(exc))
            held = False
        if held and feed not in self.held:
            log.info("polling this feed now (lease taken)", connector=name, replica=self.replica)
        elif not held and feed in self.held:
            log.info("another replica polls this feed now", connector=name, replica=self.replica)
        (self.held.add if held else self.held.discard)(feed)
        return held

    def _renew(self) -> None:
        """Renew every lease this replica holds (each step, so none lapses between polls)."""
        for feed in sorted(self.held):
            self._lease(feed.removeprefix("poll:"))

    def _poll(self, name: str):
        if not self.leasing:
            return self.app.engine.poll(name)
        feed, seconds = f"poll:{name}", self._lease_seconds()
        self.app.store.fence = (feed, self.replica, seconds)
        # A page slower than the lease (many records, a slow service) must not lose the feed
        # half-way: the lease is renewed every lease/4 while the poll runs.
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(seconds / 4):
                try:
                    self.app.store.renew_lease(feed, self.replica, seconds)
                except SyncdError as exc:
                    log.warning("could not renew the feed's lease", connector=name, error=str(exc))

        beat = threading.Thread(target=heartbeat, name=f"lease-{name}", daemon=True)
        beat.start()
        try:
            return self.app.engine.poll(name)
        finally:
            done.set()
            beat.join()

    def _check_presence(self) -> None:
        """Check that linked issues still exist, and the tracker comments syncd mirrored
        where the comment feed does not show deletions, every ``daemon.presence_interval``
        seconds (each with at most ``daemon.presence_budget`` requests per tracker)."""
        daemon = self.app.settings.daemon
        now = self.clock()
        if daemon.presence_budget <= 0 or now < self.next_presence:
            return
        self.next_presence = now + daemon.presence_interval
        spent = self.app.engine.check_presence(daemon.presence_budget)
        if any(spent.values()):
            log.info("checked that linked issues still exist", requests=spent)
        spent = self.app.engine.check_comments(daemon.presence_budget)
        if any(spent.values()):
            log.info("checked that mirrored comments still exist", requests=spent)

    def _parked(self, name: str, state: ConnectorState, now: float) -> bool:
        """Whether the connector waits for a rate limit; if so its next poll is at the end."""
        engine = self.app.engine
        until = state.rate_limited_until = engine.parking.until(name)
        if until is None:
            return False
        left = (until - engine.clock()).total_seconds()
        state.next_poll = max(state.next_poll, now + max(0.0, left))
        return True

    def _retry_paused_delivery(self) -> None:
        """Writes refused for credentials are tried again (once) every auth_retry seconds."""
        paused = self.app.engine.deliverer.paused
        now = self.clock()
        for name in list(paused):
            since = self._delivery_paused_at.setdefault(name, now)
            if now - since >= self.auth_retry and not self.health.connectors.get(name, ConnectorState()).paused_auth:
                paused.pop(name, None)
                self._delivery_paused_at.pop(name, None)
        for name in list(self._delivery_paused_at):
            if name not in paused:
                self._delivery_paused_at.pop(name)

    def view(self) -> dict:
        """The daemon's own view for ``syncd status`` and the status page (see :func:`syncd.status.gather`)."""
        paused_delivery = self.app.engine.deliverer.paused
        reload = self.health.last_reload
        return {
            "connectors": {
                name: {
                    "ok": not s.last_error and name not in paused_delivery,
                    "error": s.last_error,
                    "polling_paused": s.paused_auth,
                    "delivery_paused": paused_delivery.get(name),
                    "rate_limited_until": format_time(s.rate_limited_until),
                }
                for name, s in self.health.connectors.items()
            },
            "pid": os.getpid(),
            "cycles": self.health.cycles,
            "last_reload": None
            if reload is None
            else {"at": _iso(reload.at), "outcome": reload.outcome, "reason": reload.reason},
        }

    def _publish(self) -> None:
        """Keep the daemon's view in the store for ``syncd status``: written when it changes
        (the count of cycles aside), and every PUBLISH_EVERY_SECONDS."""
        view = self.view()
        same = {**view, "cycles": None} == {**(self._published or {}), "cycles": None}
        if same and self.clock() - self._published_at < PUBLISH_EVERY_SECONDS:
            return
        try:
            self.app.store.set_daemon_status(
                {**view, "at": format_time(self.app.engine.clock()), "replica": self.replica}
            )
        except SyncdError as exc:
            log.warning("could not record connector status in the store", error=str(exc))
            return
        self._published, self._published_at = view, self.clock()

    def _credentials_back(self, name: str, state: ConnectorState) -> bool:
        try:
            self.app.connectors[name].check()
        except AuthError:
            return False
        except SyncdError as exc:
            state.last_error = str(exc)
            return False
        log.info("credentials accepted again; polling resumes", connector=name)
        state.paused_auth = False
        state.last_error = None
        self.app.engine.deliverer.paused.pop(name, None)
        return True

    def _reload(self) -> None:
        """Swap in a new configuration between steps; keep the old one if the new is bad."""
        self.reload_requested = False
        self.stop_event.clear()
        log.info("reloading configuration")
        try:
            settings = self.load_settings()
            # The mapping files too, before the running app is closed: a bad
            # one must leave the daemon on the mappings it runs with.
            handoff_mappings(settings)
        except ConfigError as exc:
            log.error("new configuration refused; keeping the running one", problems=exc.problems)
            self._reloaded("refused", "invalid configuration: " + "; ".join(exc.problems))
            return
        old_settings = self.app.settings
        changes = unswitchable(old_settings, settings, self.app.store.unfinished_count)
        if changes:
            why = "; ".join(changes)
            log.error("reload refused: these changes need a restart; keeping the running configuration", changes=why)
            self._reloaded("refused", f"needs a restart: {why}")
            return
        self.app.close()  # releases the store lock for the new app
        try:
            self.app = self.build(settings)
        except SyncdError as exc:
            log.error("new configuration failed to start; keeping the running one", error=str(exc))
            self.app = self.build(old_settings)
            self._reloaded("refused", f"failed to start: {exc}")
        else:
            self._reloaded("applied")
        self._requests_seen = {}  # the new connectors count their requests from 0
        for name in self.app.connectors:
            self.health.connectors.setdefault(name, ConnectorState())
        for name in list(self.health.connectors):
            if name not in self.app.connectors:
                del self.health.connectors[name]
        self._wire()
        self._published = None
        if self._listener is not None:
            try:
                self._doorbell = self._make_doorbell()
            except ConfigError as exc:
                log.error("webhook secrets unreadable after the reload; webhooks refused until fixed", error=str(exc))
                self._doorbell = None
        log.info("configuration reloaded", connectors=list(self.app.connectors))

    def _reloaded(self, outcome: str, reason: str | None = None) -> None:
        self.health.last_reload = ReloadOutcome(time.time(), outcome, reason)
        self.metrics.reloads.labels(outcome).inc()
        self.metrics.last_reload_refused.set(1 if outcome == "refused" else 0)
        self.metrics.last_reload_time.set(self.health.last_reload.at)

    # -- webhook listener (syncd.doorbell) ----------------------------------------------------------

    def _make_doorbell(self) -> Doorbell:
        return Doorbell.for_connectors(
            self.app.connectors,
            self.app.engine.clock,
            self.ring,
            lambda name, result: self.metrics.webhooks.labels(name, result).inc(),
        )

    def start_webhook_listener(self) -> None:
        """Listen on daemon.webhook_address when it is set (off by default)."""
        address = self.app.settings.daemon.webhook_address
        if not address:
            return
        self._doorbell = self._make_doorbell()
        if not self._doorbell.schemes:
            log.warning("daemon.webhook_address is set but no connector has a webhook_secret: every webhook is refused")
        self._listener = Listener(address, lambda: self._doorbell)
        self._listener.start()

    def stop_webhook_listener(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    # -- health endpoint --------------------------------------------------------------------------

    def start_health_server(self) -> None:
        address = self.app.settings.daemon.health_address
        if not address:
            return
        host, _, port = address.rpartition(":")
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/", "/status"):
                    body, status, ctype = daemon.status_page(self.client_address[0])
                elif self.path.startswith("/healthz"):
                    body = json.dumps(daemon.health.as_dict()).encode()
                    status = 200 if daemon.health.as_dict()["status"] == "ok" else 503
                    ctype = "application/json"
                elif self.path.startswith("/metrics"):
                    body, status, ctype = generate_latest(daemon.metrics.registry), 200, CONTENT_TYPE_LATEST
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        host = host.strip("[]") or "127.0.0.1"
        server = ThreadingHTTPServer
        if ":" in host:

            class Server6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server = Server6
        try:
            self._http = server((host, int(port)), Handler)
        except OSError as exc:
            raise ConfigError([f"daemon.health_address: cannot listen on {address}: {_bind_reason(exc)}"]) from None
        threading.Thread(target=self._http.serve_forever, name="syncd-health", daemon=True).start()
        log.info("health endpoint listening", address=f"http://{address}/healthz", status_page=f"http://{address}/")

    def status_page(self, peer: str) -> tuple[bytes, int, str]:
        """The status page for a client at ``peer``: served to loopback only (it has no login)."""
        if not loopback(peer):
            return (
                b"syncd's status page is served to this machine only (it has no login); reach it through an SSH "
                b"tunnel, or a reverse proxy on this machine that asks for one. /healthz and /metrics answer here.\n",
                403,
                "text/plain; charset=utf-8",
            )
        app = self.app
        try:
            now = app.engine.clock()
            page = render_html(gather(app.store, app.settings, now, live=self.view()), now)
        except SyncdError as exc:  # the store closed by a reload in hand, say: the next refresh shows it
            return f"status unavailable for a moment: {exc}\n".encode(), 503, "text/plain; charset=utf-8"
        except Exception as exc:  # a reload swapping what the page reads: logged, the daemon goes on
            log.warning("the status page could not be made", error=repr(exc))
            return b"status unavailable for a moment; refresh\n", 503, "text/plain; charset=utf-8"
        return page.encode("utf-8"), 200, "text/html; charset=utf-8"

    def stop_health_server(self) -> None:
        if self._http:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
