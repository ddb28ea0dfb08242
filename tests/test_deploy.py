"""deploy/: the systemd unit and the Dockerfile agree with syncd's code.

No Docker engine runs where the suite runs, so the image is not built here;
what can be checked without one is: the unit's keys (and `systemd-analyze
verify` where systemd is installed), the Dockerfile's user, volume, copied
packages, environment (a configuration syncd accepts) and HEALTHCHECK, whose
own command is run against a real daemon's /healthz.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from syncd.cli import EXIT_USAGE
from syncd.config import DaemonSettings

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "syncd.service"
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    """Each section's keys with every value given (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line in the unit: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_runs_as_its_own_user_in_its_state_directory_and_does_not_loop_on_a_config_error():
    service = unit_keys(UNIT.read_text())["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["User"] not in ("", "root", "0") and one["Group"] == one["User"]
    assert one["StateDirectory"] == "syncd" and one["StateDirectoryMode"] == "0700"
    assert "SYNCD_STORE__PATH=%S/syncd/syncd.db" in service["Environment"]  # the store in the state directory
    assert one["Restart"] == "on-failure"
    assert str(EXIT_USAGE) in one["RestartPreventExitStatus"].split()  # syncd's exit status for a config error
    assert one["ExecStart"].split()[-1] == "run" and one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # SIGTERM finishes the step in hand within shutdown_timeout: systemd waits longer than that.
    assert float(one["TimeoutStopSec"]) > DaemonSettings().shutdown_timeout
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert one.get(key) == value, f"{key}={one.get(key)!r}, want {value!r}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_accepts_the_unit(tmp_path):
    """`systemd-analyze verify` reads every key (an unknown key or bad value is a warning line); the
    ExecStart binary is pointed at this installation's, since /opt/syncd does not exist here."""
    syncd = Path(sys.executable).with_name("syncd")
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text().replace("/opt/syncd/bin/syncd", str(syncd)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage and the build stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in steps:
        if word == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
    return env


def test_the_image_runs_as_a_user_with_the_store_in_a_volume():
    steps = final_stage()
    [user] = [rest for word, rest in steps if word == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    env = env_of(steps)
    [volume] = [json.loads(rest) for word, rest in steps if word == "VOLUME"]
    assert str(Path(env["SYNCD_STORE__PATH"]).parent) in volume
    assert [json.loads(rest) for word, rest in steps if word in ("ENTRYPOINT", "CMD")] == [["syncd"], ["run"]]


def test_the_image_installs_every_package_syncd_is_made_of():
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    sources = {
        src for word, rest in dockerfile() if word == "COPY" and "--from" not in rest for src in rest.split()[:-1]
    }
    assert {name.rstrip("*") for name in packages["include"]} | {"pyproject.toml", "README.md"} <= sources


def test_the_images_environment_is_a_configuration_syncd_accepts(tmp_path):
    from syncd.config import load_config
    from syncd.sandbox.harness import Playground

    env = env_of(final_stage())
    with Playground(tmp_path, trackers=("linear",)) as pg:
        settings = load_config(pg.config_path, env={**pg.env, **env, "SYNCD_CONFIG": str(pg.config_path)})
    assert settings.daemon.health_address == env["SYNCD_DAEMON__HEALTH_ADDRESS"]
    assert str(settings.store_path) == env["SYNCD_STORE__PATH"]


def healthcheck_command() -> list[str]:
    [rest] = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    return json.loads(rest[rest.index("CMD") + 3 :].strip())


def test_the_healthcheck_asks_the_daemons_healthz_on_its_port(tmp_path):
    """The HEALTHCHECK's own command, run against a real daemon (on a free port here): 0 while /healthz
    says ok, 1 when it answers 503 and when nothing listens."""
    import socket

    from syncd.app import build_app
    from syncd.daemon import Daemon
    from syncd.sandbox.harness import Playground

    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    code = command[2]
    image_port = env_of(final_stage())["SYNCD_DAEMON__HEALTH_ADDRESS"].rpartition(":")[2]
    assert f"http://127.0.0.1:{image_port}/healthz" in code
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    here = code.replace(f":{image_port}/", f":{port}/")

    def probe() -> int:
        return subprocess.run([sys.executable, "-c", here], capture_output=True, timeout=30).returncode

    assert probe() == 1  # nothing listens yet
    with Playground(tmp_path, trackers=("linear",)) as pg:
        settings = pg.settings().model_copy(update={"daemon": DaemonSettings(health_address=f"127.0.0.1:{port}")})
        daemon = Daemon(lambda: settings, lambda s: build_app(s, sleep=lambda _: None))
        daemon.start_health_server()
        try:
            daemon.step()
            assert probe() == 0
            pg.linear.inject("500", ".*")
            daemon.health.connectors["linear"].next_poll = 0
            daemon.step()
            assert daemon.health.as_dict()["status"] == "degraded"
            assert probe() == 1
        finally:
            daemon.stop_health_server()
            daemon.app.close()
