"""Configuration loading: merging, resolution, redaction, and one line per problem.

Most tests use two small connector kinds registered in a test registry, so
that the loader's own behaviour is what is checked; the last ones load the
real Zendesk and Linear models through the installed entry points.

Each file under tests/badconfig/ states what it expects in its header:
``# expect: <line>`` (``{file}`` and ``{dir}`` substituted), ``# env: VAR=value``
to add to the environment, ``# unset: VAR`` to take a default secret away,
``# secret: value`` for values that must appear in no message, and
``# registry: real`` to load the installed connectors (zendesk, linear,
github, jira) instead of the two test kinds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import Field, SecretStr, model_validator

from connectors.base import ConnectorConfig
from syncd import logs
from syncd.config import Settings, load_config
from syncd.errors import ConfigError, SyncdError

TESTS = Path(__file__).resolve().parents[1]
BADCONFIG = TESTS / "badconfig"
EXAMPLE = TESTS.parent / "config.example.toml"


class DeskConfig(ConnectorConfig):
    email: str | None = None
    token: SecretStr | None = None
    token_file: str | None = None
    page_size: int = Field(50, ge=1, le=100)

    @model_validator(mode="after")
    def _credentials(self) -> "DeskConfig":
        if self.token is None and self.token_file is None:
            raise ValueError("no credentials: set SYNCD_CONNECTORS__<NAME>__TOKEN or token_file")
        return self


class _Desk:
    kind = "testdesk"
    role = "helpdesk"
    config_model = DeskConfig


class TrackerConfig(ConnectorConfig):
    api_key: SecretStr
    teams: list[str] = []


class _Tracker:
    kind = "testtracker"
    role = "tracker"
    config_model = TrackerConfig


REGISTRY = {"testdesk": _Desk, "testtracker": _Tracker}
SECRETS = {
    "SYNCD_CONNECTORS__DESK__TOKEN": "desk-token-from-env",
    "SYNCD_CONNECTORS__TRACKER__API_KEY": "tracker-key-from-env",
}

VALID = """\
[store]
path = "state/syncd.db"

[daemon]
poll_interval = 30

[sync]
helpdesk = "desk"
trackers = ["tracker"]

[connectors.desk]
kind = "testdesk"
url = "https://desk.example.com/"
email = "agent@example.com"
page_size = 20

[connectors.tracker]
kind = "testtracker"
url = "https://tracker.example.com"
teams = ["ENG"]
"""


def write(tmp_path: Path, text: str = VALID, name: str = "syncd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path):
    settings = load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)
    assert isinstance(settings, Settings)
    assert settings.daemon.poll_interval == 30
    assert settings.daemon.jitter == 0.1  # default kept
    assert settings.sync.trackers == ["tracker"]
    desk = settings.connectors["desk"]
    assert isinstance(desk, DeskConfig)
    assert desk.url == "https://desk.example.com"
    assert desk.page_size == 20
    assert desk.token.get_secret_value() == "desk-token-from-env"
    assert settings.connectors["tracker"].teams == ["ENG"]
    assert settings.source == (tmp_path / "syncd.toml").resolve()


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    settings = load_config(write(conf_dir), env=SECRETS, registry=REGISTRY)
    assert settings.store_path == (conf_dir / "state" / "syncd.db").resolve()
    assert settings.store_path.is_absolute()
    assert settings.mappings_path == (conf_dir / "mappings").resolve()


def test_absolute_store_path_is_kept(tmp_path):
    target = tmp_path / "var" / "state.db"
    path = write(tmp_path, VALID.replace('"state/syncd.db"', f'"{target.as_posix()}"'))
    assert load_config(path, env=SECRETS, registry=REGISTRY).store_path == target


def test_environment_overrides_the_file(tmp_path):
    env = {**SECRETS, "SYNCD_DAEMON__POLL_INTERVAL": "45", "SYNCD_LOG__LEVEL": "debug", "SYNCD_STORE__PATH": "other.db"}
    settings = load_config(write(tmp_path), env=env, registry=REGISTRY)
    assert settings.daemon.poll_interval == 45
    assert settings.log.level == "debug"
    assert settings.store_path == (tmp_path / "other.db").resolve()


def test_environment_nests_into_connectors(tmp_path):
    env = {
        **SECRETS,
        "SYNCD_CONNECTORS__DESK__PAGE_SIZE": "7",
        "SYNCD_CONNECTORS__DESK__URL": "http://127.0.0.1:8080",
        "SYNCD_CONNECTORS__TRACKER__TEAMS": '["ENG", "APP"]',
    }
    settings = load_config(write(tmp_path), env=env, registry=REGISTRY)
    desk = settings.connectors["desk"]
    assert desk.page_size == 7 and desk.url == "http://127.0.0.1:8080"
    assert desk.email == "agent@example.com"  # the rest of the table still comes from the file
    assert settings.connectors["tracker"].teams == ["ENG", "APP"]


def test_lists_in_the_environment_may_be_comma_separated(tmp_path):
    text = VALID + '\n[connectors.tracker2]\nkind = "testtracker"\nurl = "https://t2.example.com"\n'
    env = {
        **SECRETS,
        "SYNCD_SYNC__TRACKERS": "tracker, tracker2",
        "SYNCD_CONNECTORS__TRACKER2__API_KEY": "second-tracker-key",
        "SYNCD_CONNECTORS__TRACKER__TEAMS": "ENG,APP",
    }
    settings = load_config(write(tmp_path, text), env=env, registry=REGISTRY)
    assert settings.sync.trackers == ["tracker", "tracker2"]
    assert settings.connectors["tracker"].teams == ["ENG", "APP"]


def test_a_connector_can_come_from_the_environment_alone(tmp_path):
    text = VALID.replace('trackers = ["tracker"]', 'trackers = ["tracker", "extra"]')
    env = {
        **SECRETS,
        "SYNCD_CONNECTORS__EXTRA__KIND": "testtracker",
        "SYNCD_CONNECTORS__EXTRA__URL": "https://extra.example.com",
        "SYNCD_CONNECTORS__EXTRA__API_KEY": "extra-tracker-key",
    }
    settings = load_config(write(tmp_path, text), env=env, registry=REGISTRY)
    assert settings.connectors["extra"].url == "https://extra.example.com"


def test_config_file_from_syncd_config_then_default(tmp_path, monkeypatch):
    path = write(tmp_path, name="custom.toml")
    settings = load_config(env={**SECRETS, "SYNCD_CONFIG": str(path)}, registry=REGISTRY)
    assert settings.source == path.resolve()
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    assert load_config(env=SECRETS, registry=REGISTRY).source == (tmp_path / "syncd.toml").resolve()


def test_secret_file_is_resolved_and_read(tmp_path):
    (tmp_path / "desk.token").write_text("desk-token-from-a-file\n", encoding="utf-8")
    text = VALID.replace('email = "agent@example.com"', 'token_file = "desk.token"')
    env = {k: v for k, v in SECRETS.items() if "DESK" not in k}
    settings = load_config(write(tmp_path, text), env=env, registry=REGISTRY)
    assert settings.connectors["desk"].token_file == str((tmp_path / "desk.token").resolve())
    assert logs.redact_text("x desk-token-from-a-file y") == "x *** y"


def test_loaded_secrets_are_registered_for_redaction(tmp_path):
    load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)
    assert logs.redact_text("key=tracker-key-from-env") == "key=***"
    assert logs.redact_text("sent desk-token-from-env") == "sent ***"


def test_describe_redacts_secrets(tmp_path):
    settings = load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)
    described = settings.describe()
    assert described["connectors"]["desk"]["token"] == "***"
    assert described["connectors"]["tracker"]["api_key"] == "***"
    assert described["connectors"]["desk"]["email"] == "agent@example.com"
    assert described["store"]["path"] == str(settings.store_path)
    assert described["daemon"]["poll_interval"] == 30
    flat = repr(described)
    assert all(secret not in flat for secret in SECRETS.values())


def test_settings_are_frozen(tmp_path):
    settings = load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)
    with pytest.raises(Exception):
        settings.daemon = None  # type: ignore[misc]


# --- bad configurations ----------------------------------------------------------------


def _header(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"expect": [], "env": [], "unset": [], "secret": [], "registry": []}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        match = re.match(r"# (expect|env|unset|secret|registry): (.*)$", line)
        if match:
            found[match.group(1)].append(match.group(2))
    return found


BAD_CASES = sorted(BADCONFIG.glob("*.toml"))


def test_there_are_enough_bad_cases():
    assert len(BAD_CASES) >= 30
    real = {p.stem for p in BAD_CASES if _header(p)["registry"] == ["real"]}
    for kind in ("zendesk", "linear", "github", "jira"):
        assert any(name.startswith(f"real_{kind}") for name in real), f"no bad case for the {kind} connector"


def _load_case(path: Path):
    header = _header(path)
    registry = None if header["registry"] == ["real"] else REGISTRY
    env = {k: v for k, v in SECRETS.items() if k not in header["unset"]} if registry else {}
    env.update(entry.split("=", 1) for entry in header["env"])
    return header, env, registry


@pytest.mark.parametrize("path", BAD_CASES, ids=[p.stem for p in BAD_CASES])
def test_bad_config_is_reported_line_by_line(path):
    header, env, registry = _load_case(path)
    assert header["expect"], f"{path.name} states no expected message"
    if registry is None:
        _real_kinds_or_skip()
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env, registry=registry)
    expected = [line.replace("{file}", str(path)).replace("{dir}", str(path.parent)) for line in header["expect"]]
    assert caught.value.problems == expected
    assert isinstance(caught.value, SyncdError)  # the CLI prints each line and exits 2
    for problem in caught.value.problems:
        assert "\n" not in problem
        for secret in [*header["secret"], *SECRETS.values()]:
            assert secret not in problem


def test_without_sync_helpdesk_the_one_helpdesk_connector_is_the_helpdesk(tmp_path):
    settings = load_config(write(tmp_path, VALID.replace('helpdesk = "desk"\n', "")), env=SECRETS, registry=REGISTRY)
    assert settings.sync.helpdesk == "desk"


def test_without_sync_trackers_every_tracker_connector_is_synced(tmp_path):
    text = (
        VALID.replace('trackers = ["tracker"]\n', "")
        + '\n[connectors.another]\nkind = "testtracker"\nurl = "https://t2.example"\n'
    )
    env = {**SECRETS, "SYNCD_CONNECTORS__ANOTHER__API_KEY": "another-key"}
    settings = load_config(write(tmp_path, text), env=env, registry=REGISTRY)
    assert settings.sync.trackers == ["another", "tracker"]  # by name


def test_missing_file_names_what_was_tried(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, env={}, registry=REGISTRY)
    assert caught.value.problems == [
        f"{missing}: config file not found (tried {missing}); check the path given with --config"
    ]


def test_missing_file_from_syncd_config(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(env={"SYNCD_CONFIG": str(missing)}, registry=REGISTRY)
    assert caught.value.problems == [
        f"{missing}: config file not found (tried {missing}); fix SYNCD_CONFIG or pass --config PATH"
    ]


def test_missing_default_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, registry=REGISTRY)
    assert caught.value.problems == [
        f"syncd.toml: config file not found (tried {tmp_path / 'syncd.toml'}); pass --config PATH, "
        f"set SYNCD_CONFIG, or copy config.example.toml to syncd.toml in {tmp_path}"
    ]


def test_directory_given_as_config(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={}, registry=REGISTRY)
    assert caught.value.problems == [
        f"{tmp_path}: is a directory, not a config file; point to the .toml file inside it"
    ]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="file permissions do not stop root (or are not POSIX here)"
)
def test_unreadable_file(tmp_path):
    path = write(tmp_path)
    path.chmod(0)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=SECRETS, registry=REGISTRY)
    assert caught.value.problems == [
        f"{path}: cannot read the config file (Permission denied); make it readable by the user running syncd"
    ]


def test_registered_plugin_that_fails_to_import(tmp_path):
    class Broken:
        name = "broken"

        def load(self):
            raise ImportError("No module named 'syncd_broken'")

    text = VALID.replace('kind = "testtracker"', 'kind = "broken"')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=SECRETS, registry={**REGISTRY, "broken": Broken()})
    path = tmp_path / "syncd.toml"
    assert caught.value.problems == [
        f'{path}: connectors.tracker.kind: connector kind "broken" is installed but cannot be loaded '
        "(ImportError: No module named 'syncd_broken'); reinstall syncd or the plugin"
    ]


def test_problems_from_file_and_environment_are_sorted_by_key(tmp_path):
    text = VALID.replace("poll_interval = 30", "poll_interval = 30\njitter = 2")
    env = {**SECRETS, "SYNCD_LOG__FORMAT": "xml", "SYNCD_CONNECTORS__DESK__PAGE_SIZE": "x"}
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=env, registry=REGISTRY)
    keys = [re.sub(r"^environment SYNCD_|^.*?: ", "", p).split(":")[0] for p in caught.value.problems]
    assert keys == ["CONNECTORS__DESK__PAGE_SIZE", "daemon.jitter", "LOG__FORMAT"]


# --- the real connectors, through the installed entry points -----------------------------

REAL_SECRETS = {
    "SYNCD_CONNECTORS__ZENDESK__TOKEN": "zendesk-token-from-env",
    "SYNCD_CONNECTORS__LINEAR__API_KEY": "linear-key-from-env",
}


def _real_kinds_or_skip():
    pytest.importorskip("connectors.zendesk", reason="the Zendesk connector is not in this tree")
    pytest.importorskip("connectors.linear", reason="the Linear connector is not in this tree")


def test_example_config_loads_with_secrets_from_the_environment():
    _real_kinds_or_skip()
    settings = load_config(EXAMPLE, env=REAL_SECRETS)
    assert settings.sync.helpdesk == "zendesk" and settings.sync.trackers == ["linear"]
    assert type(settings.connectors["zendesk"]).__name__ == "ZendeskConfig"
    assert type(settings.connectors["linear"]).__name__ == "LinearConfig"
    assert settings.connectors["zendesk"].token.get_secret_value() == "zendesk-token-from-env"
    assert settings.store_path == (EXAMPLE.parent / "syncd.db").resolve()
    assert settings.describe()["connectors"]["linear"]["api_key"] == "***"


def test_example_config_documents_every_key():
    _real_kinds_or_skip()
    from connectors.linear.connector import LinearConfig
    from connectors.zendesk.connector import ZendeskConfig

    text = EXAMPLE.read_text(encoding="utf-8")
    settings = load_config(EXAMPLE, env=REAL_SECRETS)
    sections = {"store": settings.store, "daemon": settings.daemon, "log": settings.log, "sync": settings.sync}
    for section, model in sections.items():
        for name, field in type(model).model_fields.items():
            key = field.alias or name  # as written in the file
            assert re.search(rf"^#?\s*{key}\s*=", text, re.M), f"[{section}] {key} is not in the example"
    for model in (ZendeskConfig, LinearConfig):
        for key in model.model_fields:
            assert re.search(rf"^#?\s*{key}\b", text, re.M), f"{model.__name__}.{key} is not in the example"


def test_real_connector_refuses_a_token_in_the_file(tmp_path):
    _real_kinds_or_skip()
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'email = "syncd@example.com"', 'email = "syncd@example.com"\ntoken = "zendesk-token-in-file"'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"SYNCD_CONNECTORS__LINEAR__API_KEY": "linear-key-from-env"})
    assert caught.value.problems == [
        f"{path}: connectors.zendesk.token: a secret written in the config file; put secrets in the "
        "environment (SYNCD_CONNECTORS__ZENDESK__TOKEN) or token_file"
    ]
    assert "zendesk-token-in-file" not in str(caught.value)


def test_cli_exits_2_on_a_bad_config(tmp_path):
    _real_kinds_or_skip()
    cli = pytest.importorskip("syncd.cli", reason="the CLI is not in this tree")
    from click.testing import CliRunner

    text = EXAMPLE.read_text(encoding="utf-8").replace("poll_interval = 60", "poll_interval = -5")
    path = write(tmp_path, text)
    result = CliRunner().invoke(cli.main, ["--config", str(path), "check", "--offline"], env=REAL_SECRETS)
    assert result.exit_code == 2
    assert f"{path}: daemon.poll_interval: must be greater than 0 (got -5)" in result.output


# --- the real command line on bad files -------------------------------------------------------

REAL_CASES = [p for p in BAD_CASES if _header(p)["registry"] == ["real"]]
CORE_CASES = [BADCONFIG / f"{name}.toml" for name in ("duplicate_key", "syntax_error", "not_utf8", "duplicate_table")]


def _cli_env(env: dict[str, str]) -> dict[str, str | None]:
    """``env`` alone: every other SYNCD_ variable of this process unset for the command."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.upper().startswith("SYNCD_")}
    return {**cleared, **env}


@pytest.mark.parametrize("path", REAL_CASES + CORE_CASES, ids=[p.stem for p in REAL_CASES + CORE_CASES])
def test_cli_check_prints_each_problem_on_stderr_and_exits_2(path):
    _real_kinds_or_skip()
    from click.testing import CliRunner

    from syncd.cli import main

    header, env, _ = _load_case(path)
    expected = [line.replace("{file}", str(path)).replace("{dir}", str(path.parent)) for line in header["expect"]]
    result = CliRunner().invoke(main, ["--config", str(path), "check", "--offline"], env=_cli_env(env))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"syncd: {line}" for line in expected]
    for secret in header["secret"]:
        assert secret not in result.output


def test_syncd_once_in_a_subprocess_exits_2_with_one_line_per_problem():
    _real_kinds_or_skip()
    import subprocess
    import sys

    path = BADCONFIG / "real_jira_keys.toml"
    header, env, _ = _load_case(path)
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("SYNCD_")}
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(path), "once"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    expected = [line.replace("{file}", str(path)) for line in header["expect"]]
    assert done.stderr.splitlines() == [f"syncd: {line}" for line in expected]
    assert done.stdout == ""
    assert "jira-badconfig-token" not in done.stderr


def test_the_health_endpoint_binds_to_loopback_by_default(tmp_path):
    assert Settings().daemon.health_address == "127.0.0.1:9187"
    settings = load_config(write(tmp_path), env=SECRETS, registry=REGISTRY)  # no [daemon] health_address
    host, _, port = settings.daemon.health_address.rpartition(":")
    assert host == "127.0.0.1" and port == "9187"
    _real_kinds_or_skip()
    example = load_config(EXAMPLE, env=REAL_SECRETS)
    assert example.daemon.health_address.rpartition(":")[0] in ("127.0.0.1", "[::1]")
