"""Watching syncd work, through the sandbox: ``once``'s progress on a terminal and the daemon's line per cycle.

Clocks are injected (the app's and the fakes' virtual clock, the daemon's
monotonic one); no test reads the hour it runs at.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
import structlog

from syncd.app import build_app
from syncd.cli import _watch
from syncd.daemon import Daemon
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e

START = datetime(2026, 3, 4, 13, 15, 0, tzinfo=timezone.utc)


class VirtualTime:
    """The app's and the fakes' clock: sleeping moves it, nothing really waits."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def frames(terminal: Terminal) -> list[str]:
    """The lines a person saw, each drawn over the last."""
    return [f.rstrip("\n") for f in terminal.getvalue().split("\r\x1b[K") if f]


@pytest.fixture
def vt():
    return VirtualTime(START)


def test_a_first_sync_on_a_terminal_shows_reading_planning_and_delivering(tmp_path, vt):
    with Playground(tmp_path, clock=vt) as pg:
        terminal = Terminal()
        with pg.app(clock=vt, sleep=vt.sleep) as app:
            progress = _watch(app, stream=terminal)
            report = app.engine.cycle()
            progress.finish()
        assert report.ok and report.pending == 0
        shown = frames(terminal)
        assert shown and terminal.getvalue().endswith("\n")  # the summary gets a line of its own
        assert any(f.startswith("read ") and "planned" in f for f in shown)
        done = report.delivery.done
        assert shown[-1].startswith(f"read {sum(p.records for p in report.polls)} records")
        assert f"delivered {done} of {done}" in shown[-1]


def test_a_rate_limit_wait_is_shown_with_its_end(tmp_path, vt):
    with Playground(tmp_path, clock=vt) as pg:
        with pg.app(clock=vt, sleep=vt.sleep) as app:
            assert app.engine.cycle().ok  # the first sync
            ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
            pg.agent_note(ticket, f"customer hit {key}")
            # Zendesk answers the note's write with a wait far longer than max_wait: parked.
            pg.zendesk.inject("429", r"PUT /api/v2/tickets/\{id\}$", count=1, retry_after=600)
            terminal = Terminal()
            progress = _watch(app, stream=terminal)
            vt.sleep(5)
            report = app.engine.cycle()
            progress.finish()
        assert report.ok and report.pending >= 1 and "zendesk" in report.rate_limited
        # 13:15 + 5 s, + 600 s asked for: 13:25:05, shown as the minute nothing is sent before.
        waits = [f for f in frames(terminal) if "waiting for" in f]
        assert waits and waits[-1].endswith("delivered 0 of 2 · waiting for Zendesk's rate limit until 13:26 UTC")


def test_the_daemon_logs_one_line_per_cycle_with_what_changed_was_delivered_failed_and_waits(tmp_path, vt):
    mono = Monotonic()
    with Playground(tmp_path, trackers=("linear", "github"), clock=vt) as pg:
        daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=vt.sleep, clock=vt), clock=mono, sleep=lambda _: None)
        try:

            def step(seconds: float = 60) -> dict:
                mono.now += seconds
                vt.sleep(seconds)
                with structlog.testing.capture_logs() as logs:
                    daemon.step()
                [line] = [e for e in logs if e["event"] == "cycle"]
                assert line["log_level"] == "info"
                return line

            first = step(0)
            assert first["changed"] > 0 and first["delivered"] > 0 and first["failed"] == 0
            assert first["rate_limit_waits"] == 0 and first["waiting_for_rate_limit"] == {}

            step()  # reads the echoes of syncd's own writes
            idle = step()
            assert (idle["changed"], idle["delivered"], idle["failed"], idle["pending"]) == (0, 0, 0, 0)

            ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
            pg.agent_note(ticket, f"customer hit {key}")
            rule = pg.zendesk.inject("500", r"PUT /api/v2/tickets/\{id\}$")
            failing = step()
            assert failing["changed"] == 1 and failing["failed"] >= 1 and failing["delivered"] >= 1
            assert failing["pending"] >= 1
            pg.zendesk.faults.remove(rule)

            # A wait short enough to sleep in place (Retry-After 2 s, max_wait 2 s): counted in seconds.
            pg.agent_note(pg.seed.tickets["android"], f"see {pg.seed.identifiers['csv']}")
            pg.zendesk.inject("429", r"PUT /api/v2/tickets/\{id\}$", count=1, retry_after=2)
            slept = step(120)  # the failed write's retry is due too
            assert slept["rate_limit_slept_seconds"] == 2.0 and slept["rate_limit_waits"] == 0
            assert slept["failed"] == 0 and slept["delivered"] >= 2

            reset = int(vt.now.timestamp()) + 3000
            pg.github.rate_remaining, pg.github.rate_reset = 0, reset
            pg.agent_note(pg.seed.tickets["slack"], f"see {pg.seed.keys('github')['vat']}")
            waiting = step(60)
            assert waiting["rate_limit_waits"] == 1 and list(waiting["waiting_for_rate_limit"]) == ["github"]
        finally:
            daemon.app.close()
