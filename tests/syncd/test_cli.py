"""`syncd check` validates the mapping directory named in syncd.toml (exit 2 on problems)."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from mappings.files import EXAMPLES
from syncd.cli import main

CONFIG = """
[sync]
helpdesk = "zendesk"
trackers = ["linear"]
mappings = "rules"

[connectors.zendesk]
kind = "zendesk"
url = "http://127.0.0.1:9"
email = "syncd@example.com"

[connectors.linear]
kind = "linear"
url = "http://127.0.0.1:9"
teams = ["ENG", "APP"]
"""
ENV = {"SYNCD_CONNECTORS__ZENDESK__TOKEN": "zd-secret-token", "SYNCD_CONNECTORS__LINEAR__API_KEY": "lin-secret"}


def check(tmp_path):
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG)
    return CliRunner().invoke(main, ["--config", str(config), "check", "--offline"], env=ENV)


def test_check_accepts_the_example_set(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "rules")
    result = check(tmp_path)
    assert result.exit_code == 0, result.output
    assert f"mappings {tmp_path / 'rules'}: ok, 6 file(s), 2 route(s)" in result.output


def test_check_reports_a_bad_mapping_with_file_line_and_key(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "routes.toml").write_text('[routes.main]\ntracker = "jira"\nteam = "ENG"\n')
    result = check(tmp_path)
    assert result.exit_code == 2
    assert (
        f'syncd: {rules}/routes.toml:2: routes.main.tracker: no tracker named "jira" in syncd.toml '
        "(sync.trackers: linear); name one of them or add it to sync.trackers\n"
    ) in result.output


def test_check_without_a_mapping_directory_uses_the_defaults(tmp_path):
    result = check(tmp_path)
    assert result.exit_code == 0, result.output
    assert "built-in defaults apply" in result.output
