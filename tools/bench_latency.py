"""Seconds from a change in a tracker to the note on its linked ticket, through the daemon.

``python -m tools.bench --latency`` runs ``syncd run``'s loop (the
:class:`~syncd.daemon.Daemon`, in a thread of this process, with the real
clocks) against the sandbox, moves a linked Linear issue through the public
API at a random moment of the poll schedule, and times until syncd's note
about it is on the ticket (read from the Zendesk fake's memory every 20 ms).
Twice: with webhook doorbells (the Linear fake sends its signed webhooks to
``daemon.webhook_address``; a long poll interval, so only the doorbell
explains a short time) and without (polling only). Figures, not assertions.
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from connectors.base import connector_class, load_registry
from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.sandbox.harness import Playground

SECRET = "bench-webhook-secret"
STATES = ("In Progress", "In Review", "Done", "Todo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Callable[[], bool], limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def change_to_ticket(
    workdir: Path, *, doorbell: bool, interval: float, changes: int, rng: random.Random
) -> list[float]:
    """Seconds from each change to its note on the ticket."""
    seconds: list[float] = []
    with Playground(workdir, trackers=("linear",)) as pg:
        pg.env["SYNCD_DAEMON__POLL_INTERVAL"] = str(interval)
        port = _free_port()
        if doorbell:
            pg.env["SYNCD_DAEMON__WEBHOOK_ADDRESS"] = f"127.0.0.1:{port}"
            pg.env["SYNCD_CONNECTORS__LINEAR__WEBHOOK_SECRET"] = SECRET
        daemon = Daemon(pg.settings, build_app)
        thread = threading.Thread(target=daemon.run, name="bench-daemon", daemon=True)
        thread.start()
        try:
            if not _wait(lambda: daemon.health.cycles >= 1, 120):
                raise RuntimeError("the daemon's first sync did not finish in two minutes")
            if doorbell:
                signer = connector_class("linear", load_registry()).webhook
                pg.linear.send_webhooks(f"http://127.0.0.1:{port}/webhooks/linear", SECRET.encode(), signer)
            time.sleep(min(interval, 3.0))  # let the echoes of the first sync settle
            assert pg.seed is not None
            key, ticket = pg.seed.identifiers["csv"], pg.seed.tickets["csv"]
            for i in range(changes):
                # A random moment of the poll schedule (of the first seconds of it, with a long
                # interval: the doorbell, not the schedule, decides then).
                time.sleep(rng.uniform(0, min(interval, 5.0)))
                state = STATES[i % len(STATES)]
                before = len(pg.zendesk.ticket_comments(ticket))
                start = time.perf_counter()
                pg.engineer_move(key, state)

                def noted(before: int = before, state: str = state) -> bool:
                    return any(state in c["body"] for c in pg.zendesk.ticket_comments(ticket)[before:])

                if not _wait(noted, interval + 30):
                    raise RuntimeError(f"no note on the ticket {interval + 30:.0f} s after moving {key} to {state}")
                seconds.append(time.perf_counter() - start)
        finally:
            pg.linear.send_webhooks(None)
            daemon.stop_event.set()
            daemon._wake.set()
            thread.join(timeout=60)
    return seconds


def latency(say: Callable[[str], None], *, changes: int = 20, interval_without: float = 10.0) -> dict:
    rng = random.Random(13)
    result = {}
    for doorbell, interval, n in ((True, 60.0, changes), (False, interval_without, max(5, changes // 2))):
        with tempfile.TemporaryDirectory(prefix="syncd-bench-latency-") as tmp:
            times = change_to_ticket(Path(tmp), doorbell=doorbell, interval=interval, changes=n, rng=rng)
        name = "with doorbells" if doorbell else "polling only"
        result[name] = {"interval": interval, "n": n, "p50": percentile(times, 50), "p99": percentile(times, 99)}
        say(
            f"change → note on the ticket, {name} (poll interval {interval:.0f} s, {n} changes at random "
            f"moments): p50 {percentile(times, 50):.2f} s, p99 {percentile(times, 99):.2f} s, max {max(times):.2f} s"
        )
    return result
