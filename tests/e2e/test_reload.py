"""SIGHUP applies what can change live and refuses, in one line, what cannot (issue 9, item 6)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
import structlog
from prometheus_client import generate_latest

from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(pg: Playground) -> tuple[Daemon, Monotonic]:
    clock = Monotonic()
    daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None), clock=clock, sleep=lambda _: None)
    daemon.step()
    return daemon, clock


def reload(daemon: Daemon) -> list[dict]:
    daemon.reload_requested = True
    with structlog.testing.capture_logs() as logs:
        daemon._reload()
    return logs


def metric(daemon: Daemon, line: str) -> bool:
    return line in generate_latest(daemon.metrics.registry).decode().splitlines()


def edit(pg: Playground, old: str, new: str) -> None:
    text = pg.config_path.read_text()
    assert old in text
    pg.config_path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "change,named",
    [
        (('path = "syncd.db"', 'path = "elsewhere.db"'), "store.path ("),
        (('health_address = ""', 'health_address = "127.0.0.1:9"'), "daemon.health_address (off -> 127.0.0.1:9)"),
        (
            ('health_address = ""', 'health_address = ""\nwebhook_address = "127.0.0.1:9"'),
            "daemon.webhook_address (off -> 127.0.0.1:9)",
        ),
        (('level = "warning"', 'level = "debug"'), "log.level (warning -> debug)"),
        (("LINEAR_URL", "http://127.0.0.1:9/another-workspace"), "connectors.linear.url ("),
    ],
)
def test_a_reload_refuses_what_it_cannot_switch_and_keeps_running_on_the_old_configuration(tmp_path, change, named):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        if change[0] == "LINEAR_URL":
            change = (pg.sandbox.url("linear"), change[1])
        daemon, clock = start(pg)
        try:
            running, links = daemon.app, daemon.app.store.count_links()
            assert links > 0
            edit(pg, *change)
            logs = reload(daemon)

            refused = [e for e in logs if e["event"].startswith("reload refused")]
            assert len(refused) == 1 and named in refused[0]["changes"]
            assert (
                refused[0]["event"] == "reload refused: these changes need a restart; keeping the running configuration"
            )
            assert daemon.app is running and not (tmp_path / "elsewhere.db").exists()
            health = daemon.health.as_dict()
            assert health["status"] == "ok"
            assert health["last_reload"]["outcome"] == "refused" and named in health["last_reload"]["reason"]
            assert metric(daemon, 'syncd_reloads_total{outcome="refused"} 1.0')
            assert metric(daemon, "syncd_last_reload_refused 1.0")

            # Still at work on the running store: a new mention is linked, no first sync began.
            ticket, key = pg.seed.tickets["slack"], pg.seed.identifiers["webhook"]
            pg.agent_note(ticket, f"related to {key}")
            clock.now += 10
            daemon.step()
            assert daemon.app.store.count_links() == links + 1
        finally:
            daemon.app.close()


def test_a_reload_applies_a_new_interval_and_a_new_connector(tmp_path):
    with Playground(tmp_path, trackers=("linear", "github")) as pg:
        text = pg.config_path.read_text()
        github_table = "[connectors.github]" + text.split("[connectors.github]", 1)[1].split("\n\n", 1)[0] + "\n"
        pg.config_path.write_text(text.replace(github_table, "").replace('"linear", "github"', '"linear"'))
        github_env = {k: pg.env.pop(k) for k in list(pg.env) if k.startswith("SYNCD_CONNECTORS__GITHUB__")}
        daemon, clock = start(pg)
        try:
            assert set(daemon.health.connectors) == {"zendesk", "linear"}
            pg.config_path.write_text(text.replace("poll_interval = 1", "poll_interval = 5"))
            pg.env.update(github_env)
            logs = reload(daemon)
            assert [e["event"] for e in logs if e["log_level"] == "error"] == []
            assert set(daemon.health.connectors) == {"zendesk", "linear", "github"}
            assert daemon.app.settings.daemon.poll_interval == 5
            assert daemon.health.as_dict()["last_reload"] == {
                "at": daemon.health.as_dict()["last_reload"]["at"],
                "outcome": "applied",
                "reason": None,
            }
            assert metric(daemon, 'syncd_reloads_total{outcome="applied"} 1.0')
            assert metric(daemon, 'syncd_reloads_total{outcome="refused"} 0.0')
            assert metric(daemon, "syncd_last_reload_refused 0.0")
            clock.now += 10
            daemon.step()
            assert daemon.health.connectors["github"].polls == 1
        finally:
            daemon.app.close()


def test_healthz_and_metrics_show_a_refused_reload(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        port = free_port()
        edit(pg, 'health_address = ""', f'health_address = "127.0.0.1:{port}"')
        daemon, _ = start(pg)
        daemon.start_health_server()
        try:
            edit(pg, f'health_address = "127.0.0.1:{port}"', f'health_address = "127.0.0.1:{port + 1}"')
            reload(daemon)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                status, health = response.status, json.loads(response.read())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                metrics = response.read().decode()
            assert status == 200 and health["last_reload"]["outcome"] == "refused"
            assert health["last_reload"]["reason"] == (
                f"needs a restart: daemon.health_address (127.0.0.1:{port} -> 127.0.0.1:{port + 1})"
            )
            assert (
                'syncd_reloads_total{outcome="refused"} 1.0' in metrics and "syncd_last_reload_refused 1.0" in metrics
            )
        finally:
            daemon.stop_health_server()
            daemon.app.close()


def test_an_invalid_configuration_on_reload_is_counted_as_refused(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        daemon, _ = start(pg)
        try:
            edit(pg, "poll_interval = 1", "poll_interval = -5")
            reload(daemon)
            last = daemon.health.as_dict()["last_reload"]
            assert last["outcome"] == "refused" and last["reason"].startswith("invalid configuration: ")
            assert "daemon.poll_interval" in last["reason"]
            assert metric(daemon, "syncd_last_reload_refused 1.0")
        finally:
            daemon.app.close()


def test_a_connector_is_removed_live_only_when_no_write_to_it_waits(tmp_path):
    from syncd.writes import Action, IssueComment

    with Playground(tmp_path, trackers=("linear", "github")) as pg:
        daemon, _ = start(pg)
        try:
            store = daemon.app.store
            store.enqueue(
                Action(
                    key="waiting-write",
                    connector="github",
                    target="1",
                    write=IssueComment("b"),
                    group="github:1",
                )
            )
            text = pg.config_path.read_text()
            github_table = "[connectors.github]" + text.split("[connectors.github]", 1)[1].split("\n\n", 1)[0] + "\n"
            pg.config_path.write_text(text.replace(github_table, "").replace('"linear", "github"', '"linear"'))
            for key in [k for k in pg.env if k.startswith("SYNCD_CONNECTORS__GITHUB__")]:
                del pg.env[key]
            unfinished = store.unfinished_count("github")
            reload(daemon)
            assert daemon.health.as_dict()["last_reload"]["reason"] == (
                f"needs a restart: connectors.github removed while {unfinished} write(s) to it wait in the outbox"
            )
            assert "github" in daemon.app.connectors

            [row] = [r for r in store.list_outbox("pending") if r.key == "waiting-write"]
            store.drop_action(row.id)
            for other in store.list_outbox():
                if other.connector == "github":
                    store.drop_action(other.id)
            reload(daemon)
            assert daemon.health.as_dict()["last_reload"]["outcome"] == "applied"
            assert set(daemon.app.connectors) == {"zendesk", "linear"}
        finally:
            daemon.app.close()
