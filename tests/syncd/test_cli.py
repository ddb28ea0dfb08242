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


def test_a_mapping_directory_named_but_missing_is_an_error(tmp_path):
    result = check(tmp_path)
    assert result.exit_code == 2
    assert (
        f"syncd: sync.mappings: {tmp_path / 'rules'} does not exist; create it (mappings/examples/ is a start) "
        "or remove sync.mappings to run with the built-in defaults\n"
    ) in result.output
    assert "built-in defaults apply" not in result.output


def test_without_sync_mappings_the_built_in_defaults_apply(tmp_path):
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG.replace('mappings = "rules"\n', ""))
    result = CliRunner().invoke(main, ["--config", str(config), "check", "--offline"], env=ENV)
    assert result.exit_code == 0, result.output
    assert f"sync.mappings is not set and {tmp_path / 'mappings'} does not exist; built-in defaults apply" in (
        result.output
    )


def test_an_empty_mapping_directory_says_so(tmp_path):
    (tmp_path / "rules").mkdir()
    result = check(tmp_path)
    assert result.exit_code == 0, result.output
    assert f"mappings {tmp_path / 'rules'}: no mapping files in it, built-in defaults apply" in result.output
