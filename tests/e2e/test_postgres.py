"""The engine and delivery on a PostgreSQL store: the same story ends the same way as on SQLite.

The crash and fault tests elsewhere use SQLite; here the same change stream is
played on both stores, once clean and once with 10 % of the services' answers
failing, and what landed in the services must be the same writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import postgres
from tools.chaos import compare, generate, settled_run

pytestmark = pytest.mark.e2e


def test_a_change_stream_ends_the_same_on_postgresql_as_on_sqlite(tmp_path, pg_store_target):
    url, schema = pg_store_target
    stream = generate(20261202, changes=80, batch_size=20, tickets=20, issues=8)
    on_sqlite = settled_run(tmp_path / "sqlite", stream, job_polls=0)
    env = {"SYNCD_STORE__URL": url, "SYNCD_STORE__SCHEMA": schema}
    on_postgres = settled_run(tmp_path / "pg", stream, job_polls=0, store_env=env)
    result = compare(on_sqlite.outcome, on_postgres.outcome, on_sqlite.stream_problems + on_postgres.stream_problems)
    assert result.ok, (result.missing[:3], result.extra[:3], result.state_mismatches[:3], result.stream_problems[:3])
    assert result.expected == result.found > 50
    assert on_postgres.quarantine_open == 0 and on_postgres.dead == 0


def test_ten_percent_faults_on_postgresql_lose_and_repeat_nothing(tmp_path, pg_store_target):
    url, schema = pg_store_target
    stream = generate(7331, changes=80, batch_size=20, tickets=20, issues=8)
    clean = settled_run(tmp_path / "clean", stream, job_polls=0)
    env = {"SYNCD_STORE__URL": url, "SYNCD_STORE__SCHEMA": schema}
    faulty = settled_run(tmp_path / "faulty", stream, job_polls=0, fault_rate=0.10, store_env=env)
    result = compare(clean.outcome, faulty.outcome, clean.stream_problems + faulty.stream_problems)
    assert faulty.faults > 0
    assert result.ok, (result.missing[:3], result.extra[:3], result.state_mismatches[:3])
    assert faulty.quarantine_open == 0 and faulty.dead == 0


def test_without_a_reachable_server_the_tests_start_an_embedded_one(tmp_path):
    """The fallback of tests/postgres.py: forced past $SYNCD_TEST_PG_URL and 127.0.0.1:5432."""
    code = (
        "from tests import postgres\n"
        "url, how, tried = postgres.find_server()\n"
        "print(how); print(url)\n"
        "import psycopg\n"
        "with psycopg.connect(url) as c: print(c.execute('select 41 + 1').fetchone()[0])\n"
    )
    env = {**os.environ, "SYNCD_TEST_PG": "embedded", "SYNCD_TEST_PG_URL": ""}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=postgres.__file__.rsplit("/tests/", 1)[0],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    how, url, answer = done.stdout.strip().splitlines()[-3:]
    assert how == "an embedded server (pgserver)" and "127.0.0.1:5432" not in url
    assert answer == "42"


def test_no_server_at_all_fails_with_every_reason(monkeypatch):
    """Never a silent skip: with nothing reachable and no embedded server, the test fails saying why."""
    monkeypatch.delenv("SYNCD_TEST_PG", raising=False)
    monkeypatch.setenv("SYNCD_TEST_PG_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(postgres, "LOCAL_URLS", ("postgresql://nobody@127.0.0.1:1/none",))
    monkeypatch.setattr(postgres, "_embedded", lambda: (None, "pgserver is not installed"))
    monkeypatch.setattr(postgres, "_FOUND", None)
    with pytest.raises(pytest.fail.Exception) as failed:
        postgres.server_url()
    message = str(failed.value)
    assert "no PostgreSQL server for the tests" in message
    assert (
        "SYNCD_TEST_PG_URL=postgresql://nobody@127.0.0.1:1/none" in message and "pgserver is not installed" in message
    )


# -- moving an SQLite store over: syncd store migrate --------------------------------------------


def test_store_migrate_copies_everything_and_the_daemon_goes_on_there_without_a_second_write(tmp_path, pg_store_target):
    from click.testing import CliRunner

    from syncd.cli import main
    from syncd.records import Event
    from syncd.sandbox.harness import Playground
    from syncd.store import COPIED_TABLES, Store
    from tools.chaos import observe

    url, schema = pg_store_target
    with Playground(tmp_path / "w", trackers=("linear",)) as pg:
        with pg.app() as app:  # a store with links, delivered writes, events, snapshots
            app.engine.cycle()
            key = pg.seed.identifiers["csv"]
            pg.agent_note(pg.seed.tickets["vat"], f"customer hit {key}")
            app.engine.cycle()
            app.engine.cycle()
        before = observe(pg, pg.seed.linked_issue_status_field_id)
        env = {**pg.env, "SYNCD_CONFIG": str(pg.config_path)}
        run = CliRunner().invoke(main, ["store", "migrate", "--to", url, "--schema", schema], env=env)
        assert run.exit_code == 0, run.output
        assert "counts equal" in run.output and "sampled rows read back equal" in run.output

        with Store(pg.store_path, readonly=True) as old, Store(url, schema=schema, readonly=True) as new:
            for table in COPIED_TABLES:
                where = " WHERE key NOT IN ('schema_version', 'file_identity')" if table == "meta" else ""
                assert old._q(f"SELECT count(*) FROM {table}{where}") == new._q(f"SELECT count(*) FROM {table}{where}")
            assert old.all_links(active=False) == new.all_links(active=False) != []
            assert old.list_outbox(limit=10_000) == new.list_outbox(limit=10_000) != []
            ticket = new.all_links()[0].ticket
            assert old.history(ticket) == new.history(ticket) != []
            assert old.stats()["cursors"] == new.stats()["cursors"]

        # A second copy into the same schema is refused: nothing is overwritten.
        again = CliRunner().invoke(main, ["store", "migrate", "--to", url, "--schema", schema], env=env)
        assert again.exit_code != 0 and "already holds syncd data" in again.output

        # The daemon moves over: two cycles on PostgreSQL write nothing again, and new ids follow the copied ones.
        pg.env.update({"SYNCD_STORE__URL": url, "SYNCD_STORE__SCHEMA": schema})
        with pg.app() as app:
            app.engine.cycle()
            app.engine.cycle()
            assert app.store.add_event(Event("moved", "moved")) > 1
        assert observe(pg, pg.seed.linked_issue_status_field_id) == before

        # syncd status reads the PostgreSQL store, and says who holds which feed (no replica runs now).
        env = {**pg.env, "SYNCD_CONFIG": str(pg.config_path)}
        status = CliRunner().invoke(main, ["status", "--json"], env=env)
        assert status.exit_code == 0, status.output
        shown = json.loads(status.output)
        assert shown["backend"] == "postgresql" and shown["leases"] == {} and shown["links"]["active"] >= 1

        # With a replica holding a feed, `syncd once` refuses to poll beside it.
        with Store(url, schema=schema) as store:
            assert store.acquire_lease("poll:zendesk", "other-host:4242:beef", 60)
        refused = CliRunner().invoke(main, ["once"], env=env)
        assert refused.exit_code == 1 and "other-host:4242:beef" in refused.output
        assert "replicas are using this store" in refused.output
