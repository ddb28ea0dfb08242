"""Chaos with replicas: three ``syncd run`` sharing one PostgreSQL store, killed at random.

The same change stream as ``tools.chaos`` is played twice: once by one
uninterrupted in-process syncd (the reference, on SQLite, no faults), and
once against ``replicas`` daemons sharing a PostgreSQL schema while the
services answer a share of syncd's requests with faults (``fault_rate``)
and the driver SIGKILLs a random replica at random requests, restarting it
each time. What landed in the services must be the reference's writes
exactly (no duplicate, nothing missing).

From the store's lease history it also reports:

- overlaps: moments when two replicas held one feed (must be 0; the holdings
  of a feed, in order, each start at or after the previous one ended);
- failover: for every holding that ended by expiry (its replica was killed),
  the time from its last renewal to the next holder's start; the p99 must be
  at most the lease plus one cycle (a replica looks at a feed held elsewhere
  every lease/4 seconds).

Run: ``python -m tools.chaos_replicas --replicas 3 --kills 60 --fault-rate 0.1``
(needs a PostgreSQL server: ``--pg-url``, $SYNCD_TEST_PG_URL, 127.0.0.1:5432,
or the embedded one the tests use).
"""

from __future__ import annotations

import argparse
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from tools.chaos import (
    FAULTS,
    LINEAR_FEED,
    ZENDESK_FEED,
    Comparison,
    World,
    _playground,
    _quiet,
    check_stream_links,
    compare,
    generate,
    observe,
    reference_run,
)

# What "one cycle" of a replica may take in these runs (see ReplicaChaosResult.failover_bound).
CYCLE_SECONDS = 3.0


@dataclass
class LeaseAudit:
    holdings: int
    overlaps: list[str]
    failovers: list[float]  # seconds, one per holding that ended by expiry

    def p(self, q: float) -> float | None:
        if not self.failovers:
            return None
        ordered = sorted(self.failovers)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def audit_leases(history: list[dict[str, Any]]) -> LeaseAudit:
    """Overlaps and failover times from the store's lease history (see the module docstring)."""
    by_feed: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        by_feed.setdefault(row["feed"], []).append(row)
    overlaps, failovers = [], []
    for feed, rows in by_feed.items():
        rows.sort(key=lambda r: (r["started_at"], r["ended_at"] is None))
        for before, after in zip(rows, rows[1:]):
            if before["ended_at"] is None or before["ended_at"] > after["started_at"]:
                overlaps.append(
                    f"{feed}: {before['holder']} held it {before['started_at']}..{before['ended_at'] or 'open'}, "
                    f"{after['holder']} from {after['started_at']}"
                )
            if before["end_reason"] == "expired":
                gap = datetime.fromisoformat(after["started_at"]) - datetime.fromisoformat(before["renewed_at"])
                failovers.append(gap.total_seconds())
    return LeaseAudit(len(history), overlaps, failovers)


class ReplicasUnderFire:
    """``replicas`` × ``syncd run`` subprocesses; a random one is SIGKILLed at the k-th request syncd sends."""

    def __init__(self, pg, replicas: int, rng: random.Random, log_path: Path, env: dict[str, str]):
        self.pg, self.rng, self.env = pg, rng, env
        self.log = open(log_path, "a")
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen | None] = [None] * replicas
        self.kills = 0
        self.restarts = 0
        self.crashes: list[str] = []
        self.requests = 0
        self.feeds: dict[str, int] = {"zendesk": 0, "linear": 0}
        self._kill_at: int | None = None
        self.planned = 0
        self.window = 1
        self._syncd_auth = {
            pg.env["SYNCD_CONNECTORS__LINEAR__API_KEY"],
        }
        pg.zendesk.listeners.append(self._listener)
        pg.linear.listeners.append(self._listener)

    def _ours(self, request) -> bool:
        auth = request.headers.get("authorization") or ""
        if auth in self._syncd_auth:
            return True
        import base64

        from connectors.zendesk.fake import SANDBOX_EMAIL

        token = self.pg.env["SYNCD_CONNECTORS__ZENDESK__TOKEN"]
        return auth == "Basic " + base64.b64encode(f"{SANDBOX_EMAIL}/token:{token}".encode()).decode()

    def _listener(self, endpoint: str, request, response) -> None:
        if not self._ours(request):
            return
        with self.lock:
            self.requests += 1
            if ZENDESK_FEED in endpoint:
                self.feeds["zendesk"] += 1
            elif endpoint.endswith(" " + LINEAR_FEED):
                self.feeds["linear"] += 1
            if self._kill_at is not None and self.requests >= self._kill_at:
                live = [p for p in self.procs if p is not None and p.poll() is None]
                if live:
                    self._kill_at = None
                    victim = self.rng.choice(live)
                    victim.send_signal(signal.SIGKILL)
                    self.kills += 1
                    self._arm_locked()

    def start(self, index: int) -> None:
        self.procs[index] = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run"], env=self.env, stdout=self.log, stderr=self.log
        )

    def start_all(self) -> None:
        for i in range(len(self.procs)):
            self.start(i)

    def plan_kills(self, count: int, window: int) -> None:
        with self.lock:
            self.planned += count
            self.window = max(1, window)
            self._arm_locked()

    def _arm_locked(self) -> None:
        if self.planned and self._kill_at is None:
            self.planned -= 1
            self._kill_at = self.requests + self.rng.randint(1, self.window)

    @property
    def kills_pending(self) -> bool:
        with self.lock:
            return bool(self.planned or self._kill_at is not None)

    def reap(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                if proc.returncode not in (-signal.SIGKILL, 0):
                    self.crashes.append(f"replica {i}: syncd run exited with status {proc.returncode}")
                self.restarts += 1
                self.start(i)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is None:
                continue
            try:
                code = proc.wait(timeout=60)
                if code not in (0, -signal.SIGKILL):
                    self.crashes.append(f"SIGTERM: exit status {code}")
            except subprocess.TimeoutExpired:
                self.crashes.append("SIGTERM: still running after 60 s")
                proc.kill()
                proc.wait()
        self.log.close()


@dataclass
class ReplicaChaosResult:
    seed: int
    replicas: int
    changes: int
    kills: int
    restarts: int
    faults: int
    requests: int
    comparison: Comparison
    audit: LeaseAudit
    lease_seconds: float
    seconds: float
    crashes: list[str] = field(default_factory=list)

    @property
    def failover_bound(self) -> float:
        # The lease, then one cycle of the replica that takes over: it looks at a feed held
        # elsewhere every lease/4 seconds, after the step in hand, which under 10 % faults
        # (0.5 s timeouts, retried) on a shared 2-core machine takes up to about 3 s.
        return self.lease_seconds * 1.25 + CYCLE_SECONDS

    @property
    def ok(self) -> bool:
        p99 = self.audit.p(0.99)
        return (
            self.comparison.ok
            and not self.crashes
            and not self.audit.overlaps
            and (p99 is None or p99 <= self.failover_bound)
        )

    def summary(self) -> str:
        c, a = self.comparison, self.audit
        p50, p99 = a.p(0.5), a.p(0.99)
        return (
            f"seed={self.seed} replicas={self.replicas} changes={self.changes} kills={self.kills} "
            f"faults={self.faults} in {self.requests} requests ({self.faults / max(1, self.requests):.1%}) "
            f"writes expected={c.expected} found={c.found} duplicates={c.duplicates} extra={len(c.extra)} "
            f"missing={len(c.missing)} state mismatches={len(c.state_mismatches)} "
            f"lease holdings={a.holdings} overlaps={len(a.overlaps)} failovers={len(a.failovers)} "
            f"failover p50={p50 if p50 is None else round(p50, 2)}s p99={p99 if p99 is None else round(p99, 2)}s "
            f"(bound {self.failover_bound:.2f}s, lease {self.lease_seconds:g}s) crashes={len(self.crashes)} "
            f"in {self.seconds:.0f}s"
        )


def replica_chaos_run(
    workdir: Path,
    url: str,
    *,
    seed: int,
    changes: int,
    kills: int,
    replicas: int = 3,
    fault_rate: float = 0.1,
    lease_seconds: float = 2.0,
    batch_size: int = 30,
    tickets: int = 40,
    issues: int = 12,
    rng_seed: int = 7,
    settle_timeout: float = 120.0,
    say: Callable[[str], None] = print,
) -> ReplicaChaosResult:
    from syncd.sandbox.server import FaultRule
    from syncd.store import Store

    started = time.monotonic()
    workdir = Path(workdir)
    stream = generate(seed, changes=changes, batch_size=batch_size, tickets=tickets, issues=issues)
    say(
        f"replicas: seed {seed}: {stream.changes} changes in {len(stream.batches)} batches, {replicas} replicas, "
        f"{kills} kills, {fault_rate:.0%} faults, lease {lease_seconds:g}s (replay with --seed {seed})"
    )
    expected, reference_problems, _ = reference_run(workdir / "reference", stream, rng_seed=rng_seed, job_polls=0)
    say(f"replicas: reference run wrote {expected.writes} notes and attachments")
    schema = "chaos_" + secrets.token_hex(4)
    rng = random.Random(seed ^ 0x5EED)
    per_batch = [kills // len(stream.batches)] * len(stream.batches)
    for i in rng.sample(range(len(stream.batches)), kills % len(stream.batches)):
        per_batch[i] += 1
    with _playground(workdir / "chaos", rng_seed) as pg:
        pg.zendesk.job_polls = 0
        world = World(pg, stream.tickets, stream.issues)
        services = (pg.zendesk, pg.linear)
        rules: dict[Any, list[FaultRule]] = {s: [] for s in services}
        if fault_rate:
            share = fault_rate / len(FAULTS)
            for service in services:
                for n, kind in enumerate(FAULTS):
                    rules[service].append(FaultRule(kind, ".*", share / (1 - share * n), None, 0.0, 0.6))
        env = {
            **pg.cli_env(),
            "SYNCD_STORE__URL": url,
            "SYNCD_STORE__SCHEMA": schema,
            "SYNCD_STORE__LEASE_SECONDS": str(lease_seconds),
            "SYNCD_STORE__POOL_SIZE": "2",
            "SYNCD_DAEMON__POLL_INTERVAL": "0.1",
            "SYNCD_DAEMON__JITTER": "0",
            "SYNCD_DAEMON__HEALTH_ADDRESS": "",
            "SYNCD_DAEMON__SHUTDOWN_TIMEOUT": "10",
            "SYNCD_DAEMON__BACKOFF_MAX": "1",
            "SYNCD_CONNECTORS__ZENDESK__TIMEOUT": "0.5",
            "SYNCD_CONNECTORS__LINEAR__TIMEOUT": "0.5",
            "SYNCD_LOG__LEVEL": "warning",
            "SYNCD_LOG__FORMAT": "json",
        }
        log_path = workdir / "replicas.log"
        fire = ReplicasUnderFire(pg, replicas, rng, log_path, env)

        def faults(on: bool) -> None:
            for service in services:
                with service.lock:
                    service.faults[:] = rules[service] if on else []

        def settle() -> None:
            """Until each feed has two polls ended well since now (a poll that began before
            may have read too early) and nothing waits in the outbox. Feed requests are not
            enough: a replica whose lease lapsed reads the feed and commits nothing. (The
            cursor's time moves only when the cursor does, so an idle feed never shows it.)"""
            seen: dict[str, set] = {"zendesk": set(), "linear": set()}
            first: dict[str, Any] = {}
            deadline = time.monotonic() + settle_timeout
            while time.monotonic() < deadline:
                fire.reap()
                try:
                    with Store(url, schema=schema, readonly=True, pool_size=1) as store:
                        polls = store.polls()  # a poll's end, noted after its pages committed
                        counts = store.outbox_counts()
                except Exception:  # a replica is still creating the schema
                    time.sleep(0.1)
                    continue
                for feed in seen:
                    stamp = polls.get(feed, {}).get("last_success")
                    first.setdefault(feed, stamp)
                    if stamp is not None and stamp != first[feed]:
                        seen[feed].add(stamp)
                if all(len(v) >= 2 for v in seen.values()):
                    if not counts.get("pending") and not counts.get("sending"):
                        if counts.get("dead"):
                            raise RuntimeError(f"{counts['dead']} action(s) went to dead letter")
                        return
                    seen = {f: set() for f in seen}
                    first = {}
                time.sleep(0.1)
            raise RuntimeError(f"the replicas did not catch up within {settle_timeout:.0f}s")

        fire.start_all()
        try:
            faults(True)
            settle()
            serial = 0
            for number, batch in enumerate(stream.batches):
                fire.plan_kills(per_batch[number], window=max(4, len(batch)))
                for change in batch:
                    serial += 1
                    faults(False)  # the people's own changes go through unharmed
                    world.apply(change, serial)
                    faults(True)
                    fire.reap()
                deadline = time.monotonic() + settle_timeout
                while fire.kills_pending:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"batch {number}: planned kills never happened")
                    fire.reap()
                    time.sleep(0.02)
                settle()
                if (number + 1) % 5 == 0:
                    say(f"replicas: {number + 1}/{len(stream.batches)} batches, {fire.kills} kills so far")
        finally:
            faults(False)
            fire.stop()
        time.sleep(lease_seconds + 0.5)  # a replica killed last left a lease: `syncd once` waits for its expiry
        for _ in range(2):  # two clean runs at the end, as tools.chaos does
            done = subprocess.run(
                [sys.executable, "-m", "syncd", "once"], env=env, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                fire.crashes.append(f"final syncd once: status {done.returncode}: {done.stderr.strip()[-300:]}")
        found = observe(pg, pg.seed.linked_issue_status_field_id if pg.seed else None)
        problems = check_stream_links(stream, world, found) + [f"reference run: {p}" for p in reference_problems]
        with Store(url, schema=schema, readonly=True, pool_size=1) as store:
            audit = audit_leases(store.lease_history())
        log_text = log_path.read_text()
        if "Traceback" in log_text:
            fire.crashes.append("a traceback in a replica's log: " + log_text[log_text.index("Traceback") :][:600])
        result = ReplicaChaosResult(
            seed,
            replicas,
            stream.changes,
            fire.kills,
            fire.restarts,
            sum(r.fired for rs in rules.values() for r in rs),
            fire.requests,
            compare(expected, found, problems),
            audit,
            lease_seconds,
            time.monotonic() - started,
            fire.crashes,
        )
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except Exception:
        pass  # a schema left behind costs nothing but space
    say("replicas: " + result.summary())
    return result


def throughput(
    workdir: Path,
    url: str,
    *,
    replicas: int,
    changes: int = 300,
    latency: float = 0.05,
    seed: int = 4242,
    lease_seconds: float = 5.0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Writes a second that ``replicas`` daemons deliver for a backlog of ``changes``.

    The replicas first make their first sync of the sandbox and stop; the
    people then make every change (no syncd running); the replicas start
    again and the clock runs until the last write has landed (the services'
    writes unchanged while each feed commits two more polls, nothing waiting).
    Each request syncd sends is answered after ``latency`` seconds, as a real
    service would. Every replica count must end with the same writes (it is printed).
    """
    from syncd.sandbox.server import FaultRule
    from syncd.store import Store

    stream = generate(seed, changes=changes, batch_size=changes, tickets=max(20, changes // 3), issues=12)
    schema = "bench_" + secrets.token_hex(4)
    with _playground(Path(workdir), 7) as pg:
        pg.zendesk.job_polls = 0
        world = World(pg, stream.tickets, stream.issues)
        status_field = pg.seed.linked_issue_status_field_id if pg.seed else None
        env = {
            **pg.cli_env(),
            "SYNCD_STORE__URL": url,
            "SYNCD_STORE__SCHEMA": schema,
            "SYNCD_STORE__LEASE_SECONDS": str(lease_seconds),
            "SYNCD_STORE__POOL_SIZE": "2",
            "SYNCD_DAEMON__POLL_INTERVAL": "0.2",
            "SYNCD_DAEMON__JITTER": "0",
            "SYNCD_DAEMON__HEALTH_ADDRESS": "",
            "SYNCD_LOG__LEVEL": "error",
        }
        # The store exists before the clock starts (the replicas would otherwise race to create it).
        with Store(url, schema=schema, pool_size=1):
            pass

        def run_until_done(fire: ReplicasUnderFire, before: int, started: float) -> tuple[float, dict[str, int]]:
            """(when the last write landed, the outbox then)."""
            last, quiet_since = -1, started
            first: dict[str, Any] = {}
            seen: dict[str, set] = {"zendesk": set(), "linear": set()}
            while time.monotonic() - started < timeout:
                time.sleep(0.25)
                fire.reap()
                writes_now = observe(pg, status_field).writes - before
                if writes_now != last:
                    last, quiet_since = writes_now, time.monotonic()
                    first, seen = {}, {f: set() for f in seen}
                    continue
                try:
                    with Store(url, schema=schema, readonly=True, pool_size=1) as store:
                        counts = store.outbox_counts()
                        polls = store.polls()  # a poll's end, noted after its pages committed
                except Exception:
                    continue
                for feed in seen:
                    stamp = polls.get(feed, {}).get("last_success")
                    first.setdefault(feed, stamp)
                    if stamp is not None and stamp != first[feed]:
                        seen[feed].add(stamp)
                if not counts["pending"] and not counts["sending"] and all(len(v) >= 2 for v in seen.values()):
                    return quiet_since, counts
            raise RuntimeError(f"{replicas} replica(s) did not finish within {timeout:.0f}s")

        log = Path(workdir) / "bench.log"
        first_sync = ReplicasUnderFire(pg, replicas, random.Random(seed), log, env)
        first_sync.start_all()
        try:
            run_until_done(first_sync, observe(pg, status_field).writes, time.monotonic())
        finally:
            first_sync.stop()
        for service in (pg.zendesk, pg.linear):
            service.listeners.remove(first_sync._listener)
        serial = 0
        for batch in stream.batches:
            for change in batch:
                serial += 1
                world.apply(change, serial)
        before = observe(pg, status_field).writes
        for service in (pg.zendesk, pg.linear):
            with service.lock:
                service.faults[:] = [FaultRule("latency", ".*", 1.0, None, 0.0, latency)]
        fire = ReplicasUnderFire(pg, replicas, random.Random(seed), log, env)
        started = time.monotonic()
        fire.start_all()
        try:
            done_at, counts = run_until_done(fire, before, started)
        finally:
            for service in (pg.zendesk, pg.linear):
                with service.lock:
                    service.faults[:] = []
            fire.stop()
        writes = observe(pg, status_field).writes - before
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except Exception:
        pass
    elapsed = done_at - started
    return {
        "replicas": replicas,
        "writes": writes,
        "seconds": elapsed,
        "writes_per_second": writes / elapsed,
        "outbox": counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos_replicas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--changes", type=int, default=600)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--lease-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--tickets", type=int, default=60)
    parser.add_argument("--issues", type=int, default=16)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pg-url", default=None, help="PostgreSQL server (default: as the tests find one)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    _quiet()
    url = args.pg_url
    if url is None:
        from tests.postgres import find_server

        url, how, tried = find_server()
        if url is None:
            print("replicas: no PostgreSQL server: " + "; ".join(tried), file=sys.stderr)
            return 2
        print(f"replicas: PostgreSQL: {how}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    with tempfile.TemporaryDirectory(prefix="syncd-replicas-") as tmp:
        result = replica_chaos_run(
            Path(args.workdir or tmp),
            url,
            seed=seed,
            changes=args.changes,
            kills=args.kills,
            replicas=args.replicas,
            fault_rate=args.fault_rate,
            lease_seconds=args.lease_seconds,
            batch_size=args.batch,
            tickets=args.tickets,
            issues=args.issues,
        )
    c = result.comparison
    for title, items in (
        ("missing", c.missing),
        ("extra", c.extra),
        ("state", c.state_mismatches),
        ("stream", c.stream_problems),
        ("overlap", result.audit.overlaps),
        ("crash", result.crashes),
    ):
        for item in items[:10]:
            print(f"  {title}: {item}")
    print(f"replicas: {'PASS' if result.ok else 'FAIL'}; seed {seed}")
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
