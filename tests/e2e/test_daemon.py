"""``syncd run`` as a real process: health, metrics, signals, one daemon per store."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from connectors.base import find_markers
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except OSError:
        return None


@pytest.fixture
def daemon(tmp_path):
    with Playground(tmp_path) as pg:
        port = free_port()
        env = {**pg.cli_env(), "SYNCD_DAEMON__HEALTH_ADDRESS": f"127.0.0.1:{port}", "SYNCD_LOG__LEVEL": "info"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: get(base + "/healthz"), what="/healthz to answer")
            yield pg, proc, base, env
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def test_runs_serves_health_and_metrics_and_stops_cleanly_on_sigterm(daemon):
    pg, proc, base, _ = daemon
    ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
    pg.agent_note(ticket, f"customer hit {key}")
    wait_for(
        lambda: any(find_markers(c["body"]) for c in pg.zendesk.ticket_comments(ticket)),
        what="the daemon to write its note",
    )

    status, body = get(base + "/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert set(health["connectors"]) == {"zendesk", "linear", "github", "jira"}
    status, metrics = get(base + "/metrics")
    assert status == 200 and 'syncd_polls_total{connector="zendesk",result="ok"}' in metrics

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    notes = [c for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
    assert len(notes) == 1


def test_sighup_keeps_running_config_when_new_one_is_bad_and_applies_a_good_one(daemon):
    pg, proc, base, _ = daemon
    good = pg.config_path.read_text()
    pg.config_path.write_text(good.replace("poll_interval = 1", "poll_interval = -5"))
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None, "a bad configuration on SIGHUP must not stop the daemon"
    ticket, key = pg.seed.tickets["slack"], pg.seed.identifiers["webhook"]
    pg.agent_note(ticket, f"related to {key}")
    wait_for(
        lambda: any(find_markers(c["body"]) for c in pg.zendesk.ticket_comments(ticket)),
        what="the daemon to keep working on its old configuration",
    )

    pg.config_path.write_text(good)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    _, err = proc.communicate(timeout=5)
    assert "new configuration refused" in err and "poll_interval" in err
    assert "configuration reloaded" in err


def test_a_second_daemon_on_the_same_store_is_told_and_exits(daemon):
    pg, proc, base, env = daemon
    env = {**env, "SYNCD_DAEMON__HEALTH_ADDRESS": ""}
    second = subprocess.run([sys.executable, "-m", "syncd", "run"], env=env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert "in use by another syncd process" in second.stderr and str(proc.pid) in second.stderr
    assert proc.poll() is None


def test_inspection_commands_work_while_the_daemon_runs(daemon):
    pg, proc, base, env = daemon
    wait_for(
        lambda: (
            subprocess.run(
                [sys.executable, "-m", "syncd", "links"], env=env, capture_output=True, text=True, timeout=30
            ).stdout.count("field")
            >= 8
        ),
        what="links to be listed",
    )
    status = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 0 and json.loads(status.stdout)["links"]["active"] >= 8
    # A link made by hand while the daemon runs is queued for it to deliver.
    ticket, key = pg.seed.tickets["2fa"], pg.seed.identifiers["safari"]
    linked = subprocess.run(
        [sys.executable, "-m", "syncd", "link", str(ticket), key], env=env, capture_output=True, text=True, timeout=30
    )
    assert linked.returncode == 0, linked.stderr
    assert "the running daemon will deliver" in linked.stdout
    wait_for(lambda: "syncd_linked" in pg.zendesk.ticket(ticket)["tags"], what="the daemon to deliver it")
