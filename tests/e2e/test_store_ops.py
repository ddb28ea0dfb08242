"""A damaged, misplaced or full store against the sandbox: one line, exit 2, nothing lost or doubled."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import structlog
from click.testing import CliRunner

from connectors.base import find_markers
from syncd.app import build_app
from syncd.cli import main
from syncd.daemon import Daemon
from syncd.sandbox.harness import Playground
from tests.syncd.test_store_ops import fill, truncate_as_after_a_crash, unfill

pytestmark = pytest.mark.e2e


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def invoke(pg: Playground, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env={**pg.env, "SYNCD_CONFIG": str(pg.config_path), **(env or {})})


def one_line(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("syncd: "), result.output
    return err


def test_a_truncated_store_is_exit_2_with_one_line_for_every_command(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        truncate_as_after_a_crash(pg.store_path)
        for command in (
            ["status"],
            ["check", "--offline"],
            ["links"],
            ["once"],
            ["report", "--format", "json"],
            ["history", "1"],
        ):
            err = one_line(invoke(pg, *command))
            assert f"{pg.store_path} is damaged (" in err and "restore your last backup" in err, command


def test_a_store_path_that_is_a_directory_is_exit_2_with_one_line(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        (tmp_path / "state").mkdir()
        env = {"SYNCD_STORE__PATH": str(tmp_path / "state")}
        for command in (["once"], ["status"], ["links"], ["check", "--offline"]):
            err = one_line(invoke(pg, *command, env=env))
            assert "state is a directory, not a store file" in err, command


def test_check_names_the_store_it_checked(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        assert "store: none yet" in invoke(pg, "check", "--offline").output
        assert invoke(pg, "once").exit_code == 0
        result = invoke(pg, "check", "--offline")
        assert result.exit_code == 0 and f"store {pg.store_path}: ok" in result.output


def markers_per_ticket(pg: Playground) -> Counter:
    seen: Counter = Counter()
    for ticket in pg.zendesk.tickets:
        for comment in pg.zendesk.ticket_comments(ticket):
            seen.update((ticket, m) for m in find_markers(comment["body"]))
    return seen


def test_a_full_disk_while_running_loses_nothing_and_writes_nothing_twice(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        clock = Monotonic()
        daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None), clock=clock, sleep=lambda _: None)
        try:
            store = daemon.app.store
            fill(store)
            with structlog.testing.capture_logs() as logs:
                daemon.step()  # every poll's page rolls back: the cursors stay where they were
            assert store.get_cursor("zendesk") is None and store.count_links() == 0
            full = [e for e in logs if "the disk is full" in str(e.get("error"))]
            assert {e.get("connector") for e in full if e["event"].startswith("poll failed")} == {"zendesk", "linear"}
            health = daemon.health.as_dict()
            assert health["status"] == "degraded" and "disk is full" in health["connectors"]["zendesk"]["last_error"]

            unfill(store)
            for name in ("linear", "zendesk"):  # polls commit, the writes wait in the outbox
                assert daemon.app.engine.poll(name).error is None
            planned = store.outbox_counts().get("pending", 0)
            assert planned > 0
            fill(store)
            with structlog.testing.capture_logs() as logs:
                daemon.step()  # no poll due; delivery meets the full disk
            assert [e["event"] for e in logs if "disk is full" in e["event"]] == [
                "the store's disk is full; delivery resumes at the next step"
            ]

            unfill(store)
            clock.now += 3600
            daemon.step()
            daemon.step()
            counts = store.outbox_counts()
            assert counts.get("pending", 0) == counts.get("sending", 0) == counts.get("dead", 0) == 0
            assert counts.get("done", 0) >= planned
            doubled = {key: n for key, n in markers_per_ticket(pg).items() if n > 1}
            assert doubled == {}, doubled
            assert daemon.health.as_dict()["status"] == "ok"
            links = json.loads(invoke(pg, "links", "--json").output)
            assert len(links) == store.count_links() > 0
        finally:
            daemon.app.close()


# -- syncd store backup -----------------------------------------------------------------------------------


def test_store_backup_while_the_daemon_holds_the_store_then_restore(tmp_path):
    import os
    import shutil
    import stat

    with Playground(tmp_path, trackers=("linear",)) as pg:
        assert invoke(pg, "once").exit_code == 0
        before = json.loads(invoke(pg, "links", "--json").output)
        backup = tmp_path / "backups" / "syncd-1.db"
        backup.parent.mkdir()
        old_umask = os.umask(0)
        try:
            with build_app(pg.settings()) as app:  # the daemon's app: it holds the store's lock
                app.store.set_daemon_status({"pid": 1})
                result = invoke(pg, "store", "backup", str(backup))
        finally:
            os.umask(old_umask)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"backed up {pg.store_path} to {backup} (schema ")
        assert f"{len(before)} active link(s)" in result.output
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600

        err = one_line(invoke(pg, "store", "backup", str(backup)))
        assert err == f"syncd: {backup} exists; give another name, or --force to replace it\n"
        assert invoke(pg, "store", "backup", str(backup), "--force").exit_code == 0
        for bad, says in (
            (pg.store_path, "is the store itself"),
            (tmp_path / "nope" / "b.db", "does not exist"),
            (tmp_path / "backups", "is a directory"),
        ):
            assert says in one_line(invoke(pg, "store", "backup", str(bad))), bad

        # Restore as the README says: move the store and its companions aside, copy the backup in.
        for p in pg.store_path.parent.glob(pg.store_path.name + "*"):
            p.rename(tmp_path / f"aside-{p.name}")
        shutil.copy(backup, pg.store_path)
        assert json.loads(invoke(pg, "links", "--json").output) == before
        assert invoke(pg, "once").exit_code == 0


def test_store_backup_of_a_damaged_store_is_exit_2(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        truncate_as_after_a_crash(pg.store_path)
        err = one_line(invoke(pg, "store", "backup", str(tmp_path / "b.db")))
        assert "is damaged" in err and not (tmp_path / "b.db").exists()
