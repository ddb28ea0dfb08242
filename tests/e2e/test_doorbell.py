"""Webhook doorbells through the daemon: a signed webhook from the sandbox's fake
brings that feed's poll forward; an unsigned, wrongly signed or stale one gets
401, is counted, and polls nothing. The daemon's and the app's clocks are
injected (nothing waits for an interval); the only real wait is for the
fake's webhook to arrive over loopback."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from connectors.base import connector_class, load_registry
from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.doorbell import MIN_GAP
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e

START = datetime(2026, 3, 4, 13, 15, 0, tzinfo=timezone.utc)
SECRET = "doorbell-secret"


class VirtualTime:
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rung(daemon: Daemon, name: str) -> bool:
    """Wait (a few seconds at most) for the fake's webhook to reach the daemon."""
    for _ in range(200):
        with daemon._rung_lock:
            if name in daemon._rung:
                return True
        time.sleep(0.02)
    return False


def counted(daemon: Daemon, name: str, result: str) -> float:
    return daemon.metrics.webhooks.labels(name, result)._value.get()


@pytest.fixture
def doorbell(tmp_path):
    vt, mono = VirtualTime(START), Monotonic()
    port = free_port()
    with Playground(tmp_path, trackers=("linear",), clock=vt) as pg:
        pg.env["SYNCD_DAEMON__WEBHOOK_ADDRESS"] = f"127.0.0.1:{port}"
        pg.env["SYNCD_DAEMON__POLL_INTERVAL"] = "60"
        pg.env["SYNCD_CONNECTORS__LINEAR__WEBHOOK_SECRET"] = SECRET
        daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=vt.sleep, clock=vt), clock=mono, sleep=lambda _: None)
        daemon.start_webhook_listener()
        signer = connector_class("linear", load_registry()).webhook
        pg.linear.send_webhooks(f"http://127.0.0.1:{port}/webhooks/linear", SECRET.encode(), signer, clock=vt)
        try:
            yield pg, daemon, vt, mono, port
        finally:
            pg.linear.send_webhooks(None)
            daemon.stop_webhook_listener()
            daemon.app.close()


def test_a_signed_webhook_polls_its_feed_now_and_a_note_reaches_the_ticket(doorbell):
    pg, daemon, vt, mono, port = doorbell
    daemon.step()  # the first sync; the next polls are a minute away
    mono.now += MIN_GAP
    daemon.step()  # syncd's own writes to the issues rang (as a real service's webhooks would)
    polls = {name: state.polls for name, state in daemon.health.connectors.items()}
    mono.now += MIN_GAP  # well inside the poll interval
    key = pg.seed.identifiers["csv"]
    pg.engineer_move(key, "Done")
    assert rung(daemon, "linear")
    daemon.step()
    after = {name: state.polls for name, state in daemon.health.connectors.items()}
    assert after["linear"] == polls["linear"] + 1  # rung: polled now
    assert after["zendesk"] == polls["zendesk"]  # not rung, not due: left alone
    assert counted(daemon, "linear", "rang") >= 1
    ticket = pg.seed.tickets["csv"]
    assert any("Done" in c["body"] for c in pg.zendesk.ticket_comments(ticket)), "the note reached the ticket"


def test_rings_closer_than_the_minimum_gap_make_one_poll(doorbell):
    pg, daemon, vt, mono, port = doorbell
    pg.linear.send_webhooks(None)  # the rings here are the test's own
    daemon.step()
    base = daemon.health.connectors["linear"].polls
    mono.now += 0.1
    daemon.ring("linear")
    daemon.step()
    assert daemon.health.connectors["linear"].polls == base + 1
    mono.now += MIN_GAP / 4
    daemon.ring("linear")
    daemon.step()
    assert daemon.health.connectors["linear"].polls == base + 1  # too soon: waits for the gap
    mono.now += MIN_GAP
    daemon.step()
    assert daemon.health.connectors["linear"].polls == base + 2  # the ring kept, polled after the gap


@pytest.mark.parametrize("forgery", ["unsigned", "bad_signature", "stale"])
def test_unsigned_wrongly_signed_or_stale_webhooks_get_401_are_counted_and_poll_nothing(doorbell, forgery):
    pg, daemon, vt, mono, port = doorbell
    pg.linear.send_webhooks(None)  # only the forged delivery below reaches the listener
    daemon.step()
    base = daemon.health.connectors["linear"].polls
    mono.now += 0.1
    signer = connector_class("linear", load_registry()).webhook
    assert signer is not None
    when = vt() - timedelta(minutes=5) if forgery == "stale" else vt()
    body, headers = signer.sign({"action": "update"}, SECRET.encode(), when)
    if forgery == "unsigned":
        headers = {"Content-Type": "application/json"}
    if forgery == "bad_signature":
        body = body.replace(b"update", b"remove")
    answer = requests.post(f"http://127.0.0.1:{port}/webhooks/linear", data=body, headers=headers, timeout=5)
    assert answer.status_code == 401
    assert counted(daemon, "linear", forgery) == 1
    assert counted(daemon, "linear", "rang") == 0
    daemon.step()
    assert daemon.health.connectors["linear"].polls == base  # no poll
    assert requests.post(f"http://127.0.0.1:{port}/webhooks/zendesk", data=b"{}", timeout=5).status_code == 404


def test_a_ring_for_a_connector_waiting_for_its_credentials_changes_nothing(doorbell):
    pg, daemon, vt, mono, port = doorbell
    pg.linear.send_webhooks(None)
    daemon.step()
    state = daemon.health.connectors["linear"]
    state.paused_auth = True  # as after a refused credential: checked again at its own slow pace
    due, polls = state.next_poll, state.polls
    mono.now += MIN_GAP
    daemon.ring("linear")
    daemon.step()
    assert (state.next_poll, state.polls) == (due, polls)
