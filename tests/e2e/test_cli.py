"""The ``syncd`` command against the sandbox: check, once, status, exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


def invoke(pg: Playground, *args: str, env: dict | None = None):
    environment = {**pg.env, "SYNCD_CONFIG": str(pg.config_path), **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment)


def test_check_validates_and_tries_every_connector(pg):
    result = invoke(pg, "check")
    assert result.exit_code == 0, result.output
    assert f"configuration {pg.config_path}: ok" in result.output
    assert "zendesk (zendesk): ok" in result.output and "linear (linear): ok" in result.output


def test_check_reports_refused_credentials_without_the_secret(pg):
    wrong = "zd-wrong-token-1234567890"
    result = invoke(pg, "check", env={"SYNCD_CONNECTORS__ZENDESK__TOKEN": wrong})
    assert result.exit_code == 1
    assert "zendesk (zendesk): FAILED" in result.output and "linear (linear): ok" in result.output
    assert wrong not in result.output


def test_check_offline_does_not_touch_the_services(pg):
    pg.sandbox.reset_counts()
    result = invoke(pg, "check", "--offline")
    assert result.exit_code == 0 and pg.sandbox.total_requests() == 0


def test_bad_configuration_is_exit_2_with_one_line_per_problem(pg):
    pg.config_path.write_text(pg.config_path.read_text().replace("poll_interval = 1", 'poll_interval = "often"'))
    result = invoke(pg, "once")
    assert result.exit_code == 2
    assert result.output == (
        f"syncd: {pg.config_path}: daemon.poll_interval: must be a valid number, "
        f'unable to parse string as a number (got "often")\n'
    )


def test_missing_config_file_says_where_it_looked(pg, tmp_path):
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "once"])
    assert result.exit_code == 2 and "nope.toml" in result.output


def test_once_json_and_status(pg):
    result = invoke(pg, "once", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["delivery"]["done"] > 0
    status = invoke(pg, "status", "--json")
    stats = json.loads(status.output)
    assert stats["links"]["active"] == 8 and stats["outbox"]["pending"] == 0


def test_inspection_before_any_run_says_what_to_do(pg):
    result = invoke(pg, "status")
    assert result.exit_code == 1 and "run `syncd once` or `syncd run`" in result.output


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    for command in (
        "run",
        "once",
        "check",
        "demo",
        "sandbox",
        "link",
        "unlink",
        "links",
        "history",
        "status",
        "outbox",
        "quarantine",
    ):
        assert f"  {command}" in result.output
