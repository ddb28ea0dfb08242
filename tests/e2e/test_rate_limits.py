"""A service's rate limit that asks for more than ``max_wait``: that connector is parked, the others go on.

In-process with moved clocks (the fakes and syncd share one virtual clock;
the daemon has its own monotonic one), and as real ``syncd`` processes for
``once`` and ``status``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import structlog
from prometheus_client import generate_latest

from connectors.base import find_markers
from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.errors import until_text
from syncd.ratelimits import waits_in_store
from syncd.records import format_time
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


class VirtualTime:
    """The app's and the fakes' clock: sleeping moves it, nothing really waits."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def syncd_notes(pg: Playground, ticket: int) -> list[str]:
    return [c["body"] for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]


def syncd(pg: Playground, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], env=pg.cli_env(), capture_output=True, text=True, timeout=120
    )


# A fixed instant (not the hour the suite runs at): 13:15 UTC, so that a reset 50 minutes on reads 14:05.
START = datetime(2026, 3, 4, 13, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def vt():
    return VirtualTime(START)


def step(daemon: Daemon, mono: Monotonic, vt: VirtualTime, seconds: float) -> None:
    mono.now += seconds
    vt.now += timedelta(seconds=seconds)
    daemon.step()


def test_github_parked_until_the_reset_gets_no_request_while_zendesk_is_polled(tmp_path, vt):
    mono = Monotonic()
    with Playground(tmp_path, trackers=("linear", "github"), clock=vt) as pg:
        daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=vt.sleep, clock=vt), clock=mono, sleep=lambda _: None)
        try:
            daemon.step()  # the first sync
            reset = int(START.timestamp()) + 3000  # 14:05 UTC: far beyond max_wait (the first sync took seconds)
            pg.github.rate_remaining, pg.github.rate_reset = 0, reset
            github_before = pg.github.total_requests()
            with structlog.testing.capture_logs() as logs:
                step(daemon, mono, vt, 5)
                refused_at = vt.now.timestamp()  # the first sync's bulk writes waited for their jobs: seconds
                assert pg.github.total_requests() == github_before + 1  # the answer that said so
                refused = pg.github.total_requests()

                # Meanwhile an agent names a GitHub issue on a ticket: Zendesk is polled and
                # written to; GitHub gets nothing, for 49 minutes of polls.
                ticket, key = pg.seed.tickets["vat"], pg.seed.keys("github")["vat"]
                pg.agent_note(ticket, f"Billing has this as {key}")
                zendesk_before = pg.zendesk.total_requests()
                for _ in range(49):
                    step(daemon, mono, vt, 60)
                assert vt.now.timestamp() < reset
                assert pg.github.total_requests() == refused, "a request went to GitHub before its reset"
                assert pg.zendesk.total_requests() > zendesk_before + 40  # polled every minute
                assert len(syncd_notes(pg, ticket)) == 1
                assert pg.world("github").comment_bodies("vat") == []

            waits = [e for e in logs if e["event"].startswith("waiting for")]
            assert [(e["event"], e["log_level"], e["connector"]) for e in waits] == [
                ("waiting for GitHub's rate limit until 14:05 UTC", "info", "github")
            ]
            until = format_time(datetime.fromtimestamp(reset, timezone.utc))
            health = daemon.health.as_dict()
            assert health["status"] == "ok"  # the service's flow control, not a failure
            assert health["connectors"]["github"]["rate_limited_until"] == until
            assert health["connectors"]["zendesk"]["rate_limited_until"] is None
            published = daemon.app.store.daemon_status()["connectors"]
            assert published["github"]["rate_limited_until"] == until
            assert {n: format_time(w.until) for n, w in waits_in_store(daemon.app.store, vt.now).items()} == {
                "github": until
            }
            metrics = generate_latest(daemon.metrics.registry).decode()
            assert 'syncd_rate_limit_waits_total{connector="github"} 1.0' in metrics
            parked = [
                ln
                for ln in metrics.splitlines()
                if ln.startswith('syncd_rate_limit_parked_seconds_total{connector="github"}')
            ]
            assert parked and float(parked[0].split()[-1]) == pytest.approx(reset - refused_at)

            # The reset passes: GitHub is polled again and the waiting write goes out, once.
            step(daemon, mono, vt, reset - vt.now.timestamp())
            step(daemon, mono, vt, 60)
            assert daemon.health.as_dict()["connectors"]["github"]["rate_limited_until"] is None
            assert len(pg.world("github").comment_bodies("vat")) == 1
            assert daemon.app.store.outbox_counts()["dead"] == 0
        finally:
            daemon.app.close()


def test_a_write_that_meets_a_secondary_limit_waits_and_is_not_counted_as_an_attempt(tmp_path, vt):
    with Playground(tmp_path, trackers=("linear", "github"), clock=vt) as pg:
        pg.env["SYNCD_DAEMON__MAX_ATTEMPTS"] = "1"  # one failed attempt would be the dead letter
        with pg.app(sleep=vt.sleep, clock=vt) as app:
            app.engine.cycle()
            ticket, key = pg.seed.tickets["vat"], pg.seed.keys("github")["vat"]
            pg.agent_note(ticket, f"Billing has this as {key}")
            app.engine.poll("github")
            app.engine.poll("zendesk")
            # GitHub's secondary limit, without retry-after and with requests remaining.
            pg.github.secondary_limit(count=1, retry_after=None)
            before = vt.now
            report = app.engine.deliver()
            assert (report.waiting, report.failed, report.dead) == (1, 0, 0)
            assert len(syncd_notes(pg, ticket)) == 1  # the Zendesk side went on
            [row] = [r for r in app.store.list_outbox() if r.connector == "github" and r.state != "done"]
            assert row.attempts == 0 and "GitHub's rate limit" in row.last_error
            # A minute from the refusal (the Zendesk side's bulk write waited for its job meanwhile).
            parked_until = app.engine.parking.until("github")
            assert parked_until is not None and before <= parked_until - timedelta(seconds=60) <= vt.now

            sent = pg.github.total_requests()
            vt.sleep(59)
            assert app.engine.cycle().ok
            assert pg.github.total_requests() == sent  # nothing before the minute is over

            vt.sleep(1)
            report = app.engine.cycle()
            assert report.ok, report.summary()
            assert len(pg.world("github").comment_bodies("vat")) == 1
            assert app.store.outbox_counts()["dead"] == 0


def test_once_finishes_the_others_names_the_parked_connector_and_the_next_run_leaves_it_alone(tmp_path):
    with Playground(tmp_path, trackers=("linear", "github")) as pg:
        assert syncd(pg, "once").returncode == 0
        now = datetime.now(timezone.utc)
        reset = int(now.timestamp()) + 3000
        pg.github.rate_remaining, pg.github.rate_reset = 0, reset
        ticket, key = pg.seed.tickets["vat"], pg.seed.keys("github")["vat"]
        pg.agent_note(ticket, f"Billing has this as {key}")

        first = syncd(pg, "once")
        # The end as the summary shows it: the minute at or after the reset, UTC.
        expected = until_text(datetime.fromtimestamp(reset, timezone.utc), now).split()[-2]
        # Nothing failed, but the write to GitHub waits for the limit: "pending, run again later".
        assert first.returncode == 3, first.stderr
        [line] = [part for part in first.stdout.split("; ") if part.startswith("github: waiting for")]
        assert line.startswith("github: waiting for GitHub's rate limit until ") and f"{expected} UTC" in line
        assert len(syncd_notes(pg, ticket)) == 1  # Zendesk was done

        status = json.loads(syncd(pg, "status", "--json").stdout)
        assert status["connectors"]["github"]["rate_limited_until"] == format_time(
            datetime.fromtimestamp(reset, timezone.utc)
        )
        [shown] = [ln for ln in syncd(pg, "status").stdout.splitlines() if ln.startswith("github: waiting")]
        assert shown.startswith("github: waiting for GitHub's rate limit until ") and f"{expected} UTC" in shown

        requests_before = pg.github.total_requests()
        again = json.loads(syncd(pg, "once", "--json").stdout)
        assert pg.github.total_requests() == requests_before  # the wait is kept in the store
        assert again["ok"] is True and "github" in again["rate_limited"]
        assert again["pending"] >= 1 and again["exit"] == 3
