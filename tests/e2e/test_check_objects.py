"""`syncd check` against the sandbox: the objects the configuration and the mapping
files name are checked against each service, one misconfiguration per test.

Each finding is one line naming the config key or the mapping file and route;
an error exits 1, a configuration that cannot be used exits 2.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from mappings.files import EXAMPLES
from syncd.cli import main
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e

TRACKERS = ("linear", "github", "jira")


def rules(tmp_path: Path, extra: str = "") -> Path:
    """The example mapping files, plus ``extra`` as a file of its own (read first: its routes come
    before the examples' catch-all route)."""
    directory = tmp_path / "rules"
    shutil.copytree(EXAMPLES, directory)
    if extra:
        (directory / "aa_extra.toml").write_text(extra)
    return directory


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=rules(tmp_path)) as playground:
        yield playground


def invoke(pg: Playground, *args: str, env: dict | None = None):
    environment = {**pg.env, "SYNCD_CONFIG": str(pg.config_path), **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment)


def edit(pg: Playground, old: str, new: str) -> None:
    text = pg.config_path.read_text()
    assert old in text, old
    pg.config_path.write_text(text.replace(old, new, 1))


def lines(output: str, level: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(f"{level}:")]


def test_the_sandbox_with_the_example_mappings_passes(pg):
    result = invoke(pg, "check")
    assert result.exit_code == 0, result.output
    assert lines(result.output, "error") == [] and lines(result.output, "warning") == []
    for name in ("zendesk", *TRACKERS):
        assert f"  {name} ({name}): ok" in result.output


def test_a_zendesk_field_that_does_not_exist_or_is_not_text(pg):
    edit(pg, f"status_field_id = {pg.seed.linked_issue_status_field_id}", "status_field_id = 999")
    text = (pg.mappings / "stages.toml").read_text()
    (pg.mappings / "stages.toml").write_text(
        text.replace(f"field = {pg.seed.stage_field_id}", f"field = {pg.seed.severity_field_id}")
    )
    result = invoke(pg, "check")
    assert result.exit_code == 1, result.output
    errors = lines(result.output, "error")
    assert (
        "error: connectors.zendesk.status_field_id: Zendesk has no ticket field 999 (where syncd shows the linked "
        "issues' status); use the id of a field listed in Admin Center > Objects and rules > Tickets > Fields"
    ) in errors
    stage = next(e for e in errors if "stages.field" in e)
    assert stage.startswith(f"error: {pg.mappings / 'stages.toml'}:")
    assert f'field {pg.seed.severity_field_id} "Severity" is of type tagger; syncd writes free text' in stage


def test_a_linear_team_that_does_not_exist_and_a_route_to_a_team_not_followed(tmp_path):
    extra = '[routes.ops]\ntracker = "linear"\nteam = "OPS"\n[routes.ops.match]\ntags = ["ops"]\n'
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=rules(tmp_path, extra)) as pg:
        edit(pg, 'teams = ["ENG", "APP"]', 'teams = ["ENG", "APP", "NOPE"]')
        result = invoke(pg, "check")
    assert result.exit_code == 1, result.output
    errors = lines(result.output, "error")
    assert any(e.startswith("error: connectors.linear.teams: no Linear team with key 'NOPE'") for e in errors)
    route = next(e for e in errors if "routes.ops" in e)
    assert route.startswith(f"error: {tmp_path / 'rules' / 'aa_extra.toml'}:1: routes.ops.team: ")
    assert "no Linear team with key 'OPS'" in route


def test_a_route_to_a_linear_team_that_exists_but_is_not_followed(tmp_path):
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=rules(tmp_path)) as pg:
        edit(pg, 'teams = ["ENG", "APP"]', 'teams = ["ENG"]')
        result = invoke(pg, "check")
    assert result.exit_code == 1, result.output
    (error,) = lines(result.output, "error")
    assert error.startswith(f"error: {tmp_path / 'rules' / 'routes.toml'}:")
    assert 'routes.mobile.team: team APP is not followed by connector linear (connectors.linear.teams = ["ENG"])' in (
        error
    )


def test_a_jira_project_that_does_not_exist_routes_elsewhere_and_an_issue_type_it_lacks(tmp_path):
    extra = (
        '[routes.platform]\ntracker = "jira"\nteam = "PLAT"\nescalate = { tag = "to_platform" }\n'
        '[routes.platform.match]\ntags = ["platform"]\n\n'
        '[routes.ghost]\ntracker = "jira"\nteam = "GHOST"\n[routes.ghost.match]\ntags = ["ghost"]\n'
    )
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=rules(tmp_path, extra)) as pg:
        edit(pg, 'projects = ["PLAT", "INFRA"]', 'projects = ["PLAT", "INFRA", "NOPE"]\nissue_type = "Incident"')
        pg.sandbox.reset_counts()
        result = invoke(pg, "check")
    assert result.exit_code == 1, result.output
    errors = lines(result.output, "error")
    assert any(e.startswith("error: connectors.jira.projects: no Jira project NOPE at http://") for e in errors)
    assert any(
        e.startswith(f"error: {tmp_path / 'rules' / 'aa_extra.toml'}:")
        and "routes.ghost.team: no Jira project GHOST" in e
        for e in errors
    )
    assert (
        "error: connectors.jira.issue_type: project PLAT (routes.platform creates issues there) has no issue type "
        "'Incident' this account can create (it offers: Bug, Task, Story, Epic); name one of those"
    ) in errors


def test_a_route_to_a_github_repository_the_connector_does_not_follow(tmp_path):
    extra = (
        '[routes.web]\ntracker = "github"\nteam = "sandbox/web"\n[routes.web.match]\ntags = ["web"]\n\n'
        '[routes.typo]\ntracker = "github"\nteam = "sandbox/no-such-repo"\n[routes.typo.match]\ntags = ["typo"]\n'
    )
    with Playground(tmp_path / "work", trackers=TRACKERS, mappings=rules(tmp_path, extra)) as pg:
        pg.github.create_repo("sandbox/web", private=True)
        result = invoke(pg, "check")
    assert result.exit_code == 1, result.output
    errors = lines(result.output, "error")
    where = f"error: {tmp_path / 'rules' / 'aa_extra.toml'}:"
    web = next(e for e in errors if "routes.web" in e)
    assert web.startswith(where) and "repository sandbox/web is not followed by connector github" in web
    typo = next(e for e in errors if "routes.typo" in e)
    assert typo.startswith(where) and "repository sandbox/no-such-repo does not exist on GitHub" in typo


def test_keys_claimed_by_two_trackers_are_flagged(pg):
    pg.jira.add_project("ENG", "Engineering")
    edit(pg, 'projects = ["PLAT", "INFRA"]', 'projects = ["PLAT", "INFRA", "ENG"]')
    result = invoke(pg, "check")
    assert result.exit_code == 0, result.output
    assert lines(result.output, "warning") == [
        "warning: connectors.linear and connectors.jira: both recognise keys such as ENG-1 (Linear and Jira): "
        "a ticket naming ENG-1 is linked to the issue in each; follow ENG in one of them"
    ]


def test_a_mappings_directory_named_but_missing_is_an_error(pg):
    shutil.rmtree(pg.mappings)
    result = invoke(pg, "check")
    assert result.exit_code == 2
    assert f"syncd: sync.mappings: {pg.mappings} does not exist" in result.output
    assert "built-in defaults apply" not in result.output


def test_following_every_linear_team_recognises_bare_keys_and_check_says_which(pg):
    edit(pg, 'teams = ["ENG", "APP"]', "teams = []")
    result = invoke(pg, "check")
    assert result.exit_code == 0, result.output
    assert (
        "note: connectors.linear.teams: empty: every team is followed; bare keys of the 2 team(s) this API key "
        "sees (APP, ENG) and of teams the feed shows later are recognised in tickets"
    ) in lines(result.output, "note")
    # The seeded "Linked issue" fields hold bare keys (ENG-3): linked as with the teams listed.
    assert invoke(pg, "once").exit_code == 0
    status = json.loads(invoke(pg, "status", "--json").output)
    assert status["links"]["active"] == 8


def test_a_link_field_value_that_names_no_issue_is_logged_not_ignored(pg):
    assert invoke(pg, "once").exit_code == 0
    ticket = pg.seed.tickets["csv"]
    pg.desk.agent_set_field(ticket, pg.seed.linked_issue_field_id, "XYZ-42")
    result = invoke(pg, "--log-level", "warning", "--log-format", "json", "once")
    assert result.exit_code == 0, result.output
    warnings = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    (found,) = [w for w in warnings if w.get("value") == "XYZ-42"]
    assert found["field"] == str(pg.seed.linked_issue_field_id) and found["ticket"] == f"#{ticket}"
    assert "names no issue of a followed tracker" in found["event"]


def test_a_token_file_others_can_read_is_a_warning_and_a_secret_given_twice_an_error(pg, tmp_path):
    token = tmp_path / "zendesk.token"
    token.write_text(pg.env["SYNCD_CONNECTORS__ZENDESK__TOKEN"] + "\n")
    os.chmod(token, 0o644)
    edit(pg, "[connectors.zendesk]\n", f'[connectors.zendesk]\ntoken_file = "{token}"\n')
    twice = invoke(pg, "check")
    assert twice.exit_code == 2
    assert (
        "syncd: environment SYNCD_CONNECTORS__ZENDESK__TOKEN: given twice, here and as token_file: "
        "syncd would not know which one is meant; keep one of them"
    ) in twice.output
    result = invoke(pg, "check", env={"SYNCD_CONNECTORS__ZENDESK__TOKEN": None})
    assert result.exit_code == 0, result.output
    assert lines(result.output, "warning") == [
        f"warning: connectors.zendesk.token_file: {token} can be read by every user (mode 644); "
        f"make it readable by syncd's user alone: chmod 600 {token}"
    ]
    os.chmod(token, 0o600)
    assert lines(invoke(pg, "check", env={"SYNCD_CONNECTORS__ZENDESK__TOKEN": None}).output, "warning") == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "url, said",
    [
        ("http://127.0.0.1:{closed}", "cannot connect to 127.0.0.1:{closed} (connection refused: nothing listens"),
        ("https://127.0.0.1:{plain}", "cannot connect to 127.0.0.1:{plain} (TLS handshake failed: the port answers"),
        ("http://syncd-check.invalid:8080", "cannot connect to syncd-check.invalid:8080 (name not found"),
    ],
    ids=["refused", "tls-on-plain-port", "name-not-found"],
)
def test_an_unreachable_url_is_one_line_with_host_port_and_reason(pg, url, said):
    plain = pg.sandbox.url("zendesk").rsplit(":", 1)[1]
    values = {"closed": closed_port(), "plain": plain}
    edit(pg, f'url = "{pg.sandbox.url("zendesk")}"', f'url = "{url.format(**values)}"')
    pg.sandbox.reset_counts()
    result = invoke(pg, "--log-level", "debug", "check")
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if "zendesk" in line and "FAILED" in line]
    assert line.startswith("  zendesk (zendesk): FAILED: GET /api/v2/users/me failed: " + said.format(**values))
    assert "retrying" not in result.output
    assert "linear (linear): ok" in result.output
