"""What `syncd check` finds beyond each connector: what it asks each connector
(syncd.checks.check_targets), keys two trackers both claim, readable secret
files; the HTTP layer's answer-fast mode; a link field value no tracker knows."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone

import pytest
import requests
import responses
from pydantic import SecretStr

from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.linear.connector import LinearConfig, LinearConnector
from connectors.zendesk.connector import ZendeskConnector
from mappings.files import EXAMPLES
from mappings.links import compile_patterns, unmatched_link_fields
from syncd.app import handoff_mappings
from syncd.checks import check_targets, overlapping_keys, secret_file_findings
from syncd.config import load_config
from syncd.errors import TransientError
from syncd.http import HttpClient, connect_failure_reason
from syncd.records import Ref, Ticket


def linear(teams=("ENG",)) -> LinearConnector:
    return LinearConnector("linear", LinearConfig(kind="linear", api_key=SecretStr("k"), teams=list(teams)))


def jira(projects=("PLAT",)) -> JiraConnector:
    config = JiraConfig(
        url="https://acme.atlassian.net", email="a@b.c", api_token=SecretStr("t"), projects=list(projects)
    )
    return JiraConnector("jira", config)


def github() -> GitHubConnector:
    return GitHubConnector("github", GitHubConfig(kind="github", token=SecretStr("t"), repositories=["acme/eng"]))


# -- overlapping keys ------------------------------------------------------------------------


def test_a_key_two_trackers_recognise_is_flagged_once():
    (finding,) = overlapping_keys({"linear": linear(("ENG", "APP")), "jira": jira(("ENG", "PLAT"))})
    assert finding.level == "warning" and finding.where == "connectors.linear and connectors.jira"
    assert finding.message.startswith("both recognise keys such as ENG-1 (Linear and Jira)")


def test_distinct_keys_and_repository_references_do_not_overlap():
    assert overlapping_keys({"linear": linear(("ENG",)), "jira": jira(("PLAT",)), "github": github()}) == []


# -- what each connector is asked ----------------------------------------------------------------


def test_targets_name_the_mapping_file_and_line_of_each_route_and_field(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(EXAMPLES, rules)
    (rules / "aa.toml").write_text(
        '[routes.platform]\ntracker = "jira"\nteam = "PLAT"\n[routes.platform.match]\nfields = { "77" = ["x"] }\n'
    )
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[sync]\nhelpdesk = "zendesk"\ntrackers = ["linear", "jira"]\nmappings = "rules"\n'
        '[connectors.zendesk]\nkind = "zendesk"\nurl = "https://acme.zendesk.com"\nemail = "a@b.c"\n'
        '[connectors.linear]\nkind = "linear"\nteams = ["ENG", "APP"]\n'
        '[connectors.jira]\nkind = "jira"\nurl = "https://acme.atlassian.net"\nemail = "a@b.c"\nprojects = ["PLAT"]\n'
    )
    env = {
        "SYNCD_CONNECTORS__ZENDESK__TOKEN": "z",
        "SYNCD_CONNECTORS__LINEAR__API_KEY": "l",
        "SYNCD_CONNECTORS__JIRA__API_TOKEN": "j",
    }
    settings = load_config(config, env=env)
    mappings = handoff_mappings(settings)
    connectors = {
        "zendesk": ZendeskConnector("zendesk", settings.connectors["zendesk"]),
        "linear": linear(("ENG", "APP")),
        "jira": jira(),
    }
    targets = check_targets(settings, mappings, connectors)
    (platform,) = targets["jira"].routes
    assert platform.where == f"{rules / 'aa.toml'}:1: routes.platform.team" and not platform.creates
    assert [(r.route, r.team, r.creates) for r in targets["linear"].routes] == [
        ("mobile", "APP", True),
        ("product", "ENG", True),
    ]
    fields = {(f.where.split(": ", 1)[1], f.field_id, f.writes, f.text) for f in targets["zendesk"].fields}
    assert ("stages.field", "36000000024", True, False) in fields
    assert ("stages.missing_field", "36000000025", True, False) in fields
    assert ("routes.platform.match.fields", "77", False, False) in fields
    assert ("routes.mobile.severity.field", "36000000010", False, False) in fields
    stage = next(f for f in targets["zendesk"].fields if f.where.endswith("stages.field"))
    assert stage.where.startswith(f"{rules / 'stages.toml'}:")
    assert targets["linear"].fields == () and targets["zendesk"].routes == ()


# -- secret files ------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_secret_file_others_can_read_is_a_warning(tmp_path):
    token = tmp_path / "token"
    token.write_text("z-secret\n")
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[sync]\nhelpdesk = "zendesk"\ntrackers = ["linear"]\n'
        f'[connectors.zendesk]\nkind = "zendesk"\nurl = "https://acme.zendesk.com"\nemail = "a@b.c"\n'
        f'token_file = "{token}"\n[connectors.linear]\nkind = "linear"\n'
    )
    env = {"SYNCD_CONNECTORS__LINEAR__API_KEY": "l"}
    for mode, who in ((0o640, "its group"), (0o604, "every user")):
        os.chmod(token, mode)
        (finding,) = secret_file_findings(load_config(config, env=env))
        assert finding.level == "warning" and finding.where == "connectors.zendesk.token_file"
        assert finding.message == (
            f"{token} can be read by {who} (mode {mode:o}); make it readable by syncd's user alone: chmod 600 {token}"
        )
    os.chmod(token, 0o600)
    assert secret_file_findings(load_config(config, env=env)) == []


# -- the HTTP layer's answer-fast mode ---------------------------------------------------------


def test_answer_fast_is_one_attempt_with_short_timeouts_and_no_retry_log():
    http = HttpClient("zendesk", "https://acme.example.com", timeout=(5.0, 30.0), max_attempts=5, sleep=lambda s: None)
    http.answer_fast(timeout=3.0)
    assert (http.timeout, http.max_attempts, http.max_wait) == ((3.0, 6.0), 1, 0.0)
    with responses.RequestsMock() as mock:
        mock.get(
            "https://acme.example.com/x",
            body=requests.exceptions.ConnectionError(
                "Failed to establish a new connection: [Errno 111] Connection refused"
            ),
        )
        with pytest.raises(TransientError) as caught:
            http.request("GET", "/x")
        assert len(mock.calls) == 1
    assert str(caught.value) == (
        "zendesk: GET /x failed: cannot connect to acme.example.com:443 "
        "(connection refused: nothing listens on that port)"
    )
    assert http.stats.retries == 0


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"),
            "TLS handshake failed: the port",
        ),
        (requests.exceptions.ConnectionError("NameResolutionError: Failed to resolve 'x'"), "name not found"),
        (requests.exceptions.ConnectionError("[Errno 111] Connection refused"), "connection refused"),
        (requests.exceptions.ConnectionError("[Errno 101] Network is unreachable"), "network unreachable"),
    ],
)
def test_connect_failures_are_said_in_the_operators_words(error, reason):
    assert connect_failure_reason(error).startswith(reason)


# -- a link field value no tracker recognises ----------------------------------------------------


def ticket(value: str | None) -> Ticket:
    return Ticket(
        ref=Ref("zendesk", "7"),
        key="#7",
        url="https://acme.zendesk.com/agent/tickets/7",
        subject="s",
        status="open",
        updated_at=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc),
        fields={"100": value},
    )


def test_a_changed_link_field_value_that_no_pattern_matches_is_reported():
    patterns = compile_patterns({"linear": linear(("ENG",)).link_patterns()})
    assert unmatched_link_fields(ticket("XYZ-42"), None, patterns, ["100"]) == [("100", "XYZ-42")]
    assert unmatched_link_fields(ticket("ENG-42"), None, patterns, ["100"]) == []
    assert unmatched_link_fields(ticket("XYZ-42"), ticket("XYZ-42"), patterns, ["100"]) == []  # unchanged
    assert unmatched_link_fields(ticket(None), None, patterns, ["100"]) == []
