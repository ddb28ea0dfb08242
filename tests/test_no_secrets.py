"""No token, password or authorization header in anything the suite saw.

tests/conftest.py records every log record, CLI result and child process
output of the session (see ``LeakWatch``); the last test of the session
checks all of it, and every SQLite store file the tests left under pytest's
temporary directory, against every secret the suite knows: the sandbox
credentials, the tokens the connector and config tests use, and every value
syncd registered as a secret while the suite ran.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from syncd import logs
from tests.conftest import LEAK_WATCH, LeakWatch

MIN_LENGTH = 6  # shorter test values ("x", "k") are words, not secrets


def known_secrets() -> set[str]:
    from connectors.github import fake as gh_fake
    from connectors.jira import fake as jira_fake
    from connectors.linear import fake as linear_fake
    from connectors.zendesk import fake as zd_fake
    from tests.connectors.github import test_github
    from tests.connectors.jira import test_jira
    from tests.connectors.linear import test_linear
    from tests.fuzz.test_normalisers import FUZZ_SECRETS
    from tests.syncd.test_config import BADCONFIG, REAL_SECRETS, SECRETS, _header

    values = {
        zd_fake.SANDBOX_TOKEN,
        zd_fake.SANDBOX_OAUTH_TOKEN,
        linear_fake.SANDBOX_API_KEY,
        linear_fake.SANDBOX_OAUTH_TOKEN,
        jira_fake.SANDBOX_TOKEN,
        jira_fake.SANDBOX_OAUTH_TOKEN,
        gh_fake.SANDBOX_GITHUB_TOKEN,
        test_github.TOKEN,
        test_jira.TOKEN,
        test_linear.KEY,
        "t0ken-value",
        *FUZZ_SECRETS,
        *SECRETS.values(),
        *REAL_SECRETS.values(),
    }
    # What an Authorization header would carry for the sandbox's Basic logins.
    values.add(base64.b64encode(f"{zd_fake.SANDBOX_EMAIL}/token:{zd_fake.SANDBOX_TOKEN}".encode()).decode())
    values.add(base64.b64encode(f"{jira_fake.SANDBOX_EMAIL}:{jira_fake.SANDBOX_TOKEN}".encode()).decode())
    for path in BADCONFIG.glob("*.toml"):
        header = _header(path)
        values.update(header["secret"])
        values.update(v for k, v in (e.split("=", 1) for e in header["env"]) if logs.redact_value(v, k) != v)
    with logs._secrets_lock:
        values.update(logs._secrets)  # everything syncd registered while the suite ran
    return {v for v in values if len(v) >= MIN_LENGTH}


def find_leaks(watch: LeakWatch, secrets: set[str], store_root: Path | None) -> list[str]:
    """One line per leak: where, and which secret (shown by its first characters only)."""
    leaks = []
    for where, text in watch.seen:
        for secret in secrets:
            if secret in text:
                leaks.append(f"{where}: contains {secret[:4]}… ({len(secret)} chars)")
    for path in sorted(store_root.rglob("*")) if store_root else ():
        if not re.search(r"\.db(-wal|-shm|-journal)?$", path.name) or not path.is_file():
            continue
        data = path.read_bytes()
        for secret in secrets:
            if secret.encode() in data:
                leaks.append(f"store file {path}: contains {secret[:4]}… ({len(secret)} chars)")
    return leaks


def test_the_check_names_where_a_planted_secret_leaked(tmp_path):
    watch = LeakWatch()
    watch.test = "tests/test_x.py::test_y"
    watch.add("log record syncd.engine", '{"event": "sent", "auth": "Bearer plant3d-secret-value"}')
    watch.add("CLI ['once'] output", "all fine")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "syncd.db-wal").write_bytes(b"\x00\x01plant3d-secret-value\x00")
    leaks = find_leaks(watch, {"plant3d-secret-value"}, tmp_path)
    assert leaks == [
        "tests/test_x.py::test_y: log record syncd.engine: contains plan… (20 chars)",
        f"store file {tmp_path / 'state' / 'syncd.db-wal'}: contains plan… (20 chars)",
    ]
    assert find_leaks(watch, {"another-secret"}, tmp_path) == []


def test_the_watch_records_logs_through_the_production_pipeline():
    import logging

    import structlog

    logs.register_secret("watch-selftest-secret")
    before = len(LEAK_WATCH.seen)
    structlog.get_logger("syncd.selftest").warning("sending", token="watch-selftest-secret")
    logging.getLogger("third.party").error("header Authorization: Bearer watch-selftest-secret")
    new = [text for _, text in LEAK_WATCH.seen[before:]]
    assert len(new) == 2 and all("***" in text for text in new)
    assert not any("watch-selftest-secret" in text for text in new)


def test_nothing_the_suite_saw_holds_a_secret(tmp_path_factory):
    """Runs last (see tests/conftest.py): fails naming each place a secret leaked."""
    LEAK_WATCH.flush_stream()
    if len({where.split(": ", 1)[0] for where, _ in LEAK_WATCH.seen}) < 3:
        pytest.skip("only meaningful after the rest of the suite: run the whole suite")
    root = tmp_path_factory.getbasetemp()
    leaks = find_leaks(LEAK_WATCH, known_secrets(), root)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
