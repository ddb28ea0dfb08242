"""Logging: JSON lines off a terminal, console on one, and no secret in any output."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest
import structlog
from pydantic import SecretStr

from syncd import logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore():
    yield
    logs.reset_logging()


@pytest.fixture
def out():
    stream = io.StringIO()
    logs.configure_logging("debug", "auto", stream)
    return stream


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_a_terminal(out):
    structlog.get_logger("syncd.test").info("polled", connector="zendesk", records=3)
    [record] = records(out)
    assert record["event"] == "polled"
    assert record["connector"] == "zendesk" and record["records"] == 3
    assert record["level"] == "info"
    assert record["logger"] == "syncd.test"
    stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset().total_seconds() == 0


def test_console_rendering_on_a_terminal():
    stream = Terminal()
    logs.configure_logging("info", "auto", stream)
    structlog.get_logger("syncd.test").info("polled", connector="zendesk")
    text = stream.getvalue()
    assert "polled" in text and "connector" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_json_forced_on_a_terminal():
    stream = Terminal()
    logs.configure_logging("info", "json", stream)
    structlog.get_logger().warning("forced")
    assert records(stream)[0]["event"] == "forced"


def test_level_filters(out):
    logs.configure_logging("warning", "json", out)
    log = structlog.get_logger("syncd.test")
    log.info("hidden")
    log.warning("shown")
    assert [r["event"] for r in records(out)] == ["shown"]


def test_stdlib_logging_goes_through_the_same_pipeline(out):
    logging.getLogger("some.library").warning("disk at %d%%", 91)
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
    [record] = records(out)
    assert record["event"] == "disk at 91%"
    assert record["logger"] == "some.library" and record["level"] == "warning"


@pytest.mark.parametrize("key", ["token", "api_key", "password", "client_secret", "Authorization",
                                 "cookie", "oauth_token", "X-Api-Key"])
def test_secret_keys_are_redacted(out, key):
    structlog.get_logger().info("request", **{key: "s3nsitive-value"})
    [record] = records(out)
    assert record[key] == "***"
    assert "s3nsitive-value" not in out.getvalue()


def test_secret_file_paths_stay_readable(out):
    structlog.get_logger().info("reading", token_file="/etc/syncd/token")
    assert records(out)[0]["token_file"] == "/etc/syncd/token"


def test_nested_structures_are_redacted(out):
    structlog.get_logger().info("sent", request={
        "headers": {"Authorization": "Basic YWdlbnQ6cGFzcw==", "Accept": "application/json"},
        "params": [{"access_token": "nested-token-value"}],
        "auth": ("agent@example.com/token", SecretStr("tuple-secret")),
    })
    [record] = records(out)
    request = record["request"]
    assert request["headers"] == {"Authorization": "***", "Accept": "application/json"}
    assert request["params"] == [{"access_token": "***"}]
    assert request["auth"] == ["agent@example.com/token", "***"]
    text = out.getvalue()
    for secret in ("YWdlbnQ6cGFzcw==", "nested-token-value", "tuple-secret"):
        assert secret not in text


def test_secretstr_values_under_any_key(out):
    structlog.get_logger().info("configured", value=SecretStr("plain-key-but-secret"))
    assert records(out)[0]["value"] == "***"
    assert "plain-key-but-secret" not in out.getvalue()


@pytest.mark.parametrize("text,expected", [
    ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
    ("sent Basic YWdlbnQ6cGFzcw== to host", "sent Basic *** to host"),
    ("GET /api?access_token=abc123&page=2", "GET /api?access_token=***&page=2"),
    ("password: hunter22 then", "password: *** then"),
    ("nothing to hide here", "nothing to hide here"),
])
def test_credentials_inside_strings(out, text, expected):
    structlog.get_logger().info(text)
    assert records(out)[0]["event"] == expected


def test_registered_secret_never_appears(out):
    secret = "reg1stered-zz-9f3"
    logs.register_secret(secret)
    log = structlog.get_logger("syncd.test")
    log.info(f"message with {secret}", detail=f"in a value {secret}", nested={"a": [secret]})
    logging.getLogger("third.party").error("stdlib says %s", secret)
    try:
        raise RuntimeError(f"failed while sending {secret}")
    except RuntimeError:
        log.exception("delivery failed")
        logging.getLogger("third.party").exception("stdlib traceback")
    text = out.getvalue()
    assert secret not in text
    assert text.count("***") >= 6
    assert len(records(out)) == 4


def test_exceptions_are_rendered_in_json_and_redacted(out):
    try:
        raise ValueError("bad answer for Bearer tok-in-exception-77")
    except ValueError:
        structlog.get_logger().exception("failed")
    [record] = records(out)
    assert "Traceback (most recent call last)" in record["exception"]
    assert "ValueError: bad answer for Bearer ***" in record["exception"]
    assert "tok-in-exception-77" not in out.getvalue()


def test_exception_objects_as_values_are_redacted(out):
    structlog.get_logger().warning("retrying", error=ConnectionError("reset; token=exc-secret-value"))
    assert records(out)[0]["error"] == "ConnectionError: reset; token=***"


def test_short_values_are_not_registered():
    # Two characters would blank out parts of every ordinary word.
    logs.register_secret("ab")
    assert logs.redact_text("a cab b") == "a cab b"


def test_configure_twice_keeps_one_handler():
    first, second = io.StringIO(), io.StringIO()
    logs.configure_logging("info", "json", first)
    logs.configure_logging("info", "json", second)
    structlog.get_logger().info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


@pytest.mark.parametrize("level,fmt", [("loud", "json"), ("info", "xml")])
def test_bad_arguments(level, fmt):
    with pytest.raises(ValueError):
        logs.configure_logging(level, fmt, io.StringIO())
