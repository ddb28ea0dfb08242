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
"""

from __future__ import annotations

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
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from syncd.app import App, handoff_mappings
from syncd.config import Settings
from syncd.errors import AuthError, ConfigError, StoreFull, SyncdError
from syncd.ratelimits import Wait
from syncd.records import format_time

log = structlog.get_logger("syncd.daemon")

AUTH_RETRY_SECONDS = 300.0
# Where the daemon keeps its view of each connector in the store (record_meta).


@dataclass
class ConnectorState:
    next_poll: float = 0.0
    last_ok: float | None = None
    last_error: str | None = None
    paused_auth: bool = False
    polls: int = 0
    rate_limited_until: datetime | None = None  # parked for a rate limit until then (the app's clock)


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
        self.requests = Gauge(
            "syncd_http_requests", "HTTP requests sent per connector", ["connector"], registry=self.registry
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
        self.last_reload_time = Gauge(
            "syncd_last_reload_timestamp_seconds", "When the last reload was asked for", registry=self.registry
        )


def unswitchable(old: Settings, new: Settings, waiting: Callable[[str], int]) -> list[str]:
    """What a reload from ``old`` to ``new`` cannot switch in the running daemon, one phrase each.

    The store and the health endpoint's socket are opened once, at start; a
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
        self.health = Health()
        self.metrics = Metrics()
        self._sleep = sleep or (lambda s: self.stop_event.wait(s))
        self._http: ThreadingHTTPServer | None = None
        self.next_presence = 0.0  # the first step checks linked issues; then every presence_interval
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

    def _on_rate_limit(self, wait: Wait, seconds: float, begun: bool) -> None:
        if begun:
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
        self.stop_event.set()  # wake the sleep; the loop clears it again

    # -- loop --------------------------------------------------------------------------------

    def interval(self, name: str) -> float:
        config = self.app.connectors[name].config
        return float(config.poll_interval or self.app.settings.daemon.poll_interval)

    def run(self) -> int:
        self.start_health_server()
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
                if self.stop_event.is_set() and self.reload_requested:
                    self.stop_event.clear()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
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
        wait = min((s.next_poll for s in self.health.connectors.values()), default=now + 60) - now
        # A replica wakes often enough to renew its leases well before they lapse.
        return min(wait, self._lease_seconds() / 4) if self.leasing else wait

    def step(self) -> None:
        """Poll every connector that is due, then deliver the outbox."""
        if self.leasing:
            self._renew()
        now = self.clock()
        jitter = self.app.settings.daemon.jitter
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
            state.polls += 1
            self.metrics.records.labels(name).inc(report.records)
            if report.error:
                state.last_error = report.error
                state.paused_auth = report.auth_failed
                self.metrics.polls.labels(name, "error").inc()
            elif report.rate_limited_until is not None:
                state.last_error = None  # the service's flow control, not a failure
                self.metrics.polls.labels(name, "rate_limited").inc()
            else:
                state.last_error = None
                state.last_ok = time.time()
                self.metrics.polls.labels(name, "ok").inc()
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
            self.metrics.requests.labels(name).set(connector.http.stats.requests)
        self.health.cycles += 1
        self._publish()

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
        """Check that linked issues still exist, every ``daemon.presence_interval`` seconds."""
        daemon = self.app.settings.daemon
        now = self.clock()
        if daemon.presence_budget <= 0 or now < self.next_presence:
            return
        self.next_presence = now + daemon.presence_interval
        spent = self.app.engine.check_presence(daemon.presence_budget)
        if any(spent.values()):
            log.info("checked that linked issues still exist", requests=spent)

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

    def _publish(self) -> None:
        """Keep each connector's state in the store for ``syncd status`` (written when it changes)."""
        paused_delivery = self.app.engine.deliverer.paused
        view = {
            name: {
                "ok": not s.last_error and name not in paused_delivery,
                "error": s.last_error,
                "polling_paused": s.paused_auth,
                "delivery_paused": paused_delivery.get(name),
                "rate_limited_until": format_time(s.rate_limited_until),
            }
            for name, s in self.health.connectors.items()
        }
        if view == self._published:
            return
        try:
            self.app.store.set_daemon_status({"connectors": view, "pid": os.getpid(), "replica": self.replica})
        except SyncdError as exc:
            log.warning("could not record connector status in the store", error=str(exc))
            return
        self._published = view

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
        for name in self.app.connectors:
            self.health.connectors.setdefault(name, ConnectorState())
        for name in list(self.health.connectors):
            if name not in self.app.connectors:
                del self.health.connectors[name]
        self._wire()
        self._published = None
        log.info("configuration reloaded", connectors=list(self.app.connectors))

    def _reloaded(self, outcome: str, reason: str | None = None) -> None:
        self.health.last_reload = ReloadOutcome(time.time(), outcome, reason)
        self.metrics.reloads.labels(outcome).inc()
        self.metrics.last_reload_refused.set(1 if outcome == "refused" else 0)
        self.metrics.last_reload_time.set(self.health.last_reload.at)

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
                if self.path.startswith("/healthz"):
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

        try:
            self._http = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
        except OSError as exc:
            log.error("health endpoint not started", address=address, error=str(exc))
            return
        threading.Thread(target=self._http.serve_forever, name="syncd-health", daemon=True).start()
        log.info("health endpoint listening", address=f"http://{address}/healthz")

    def stop_health_server(self) -> None:
        if self._http:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
