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


@pytest.mark.parametrize(
    "key", ["token", "api_key", "password", "client_secret", "Authorization", "cookie", "oauth_token", "X-Api-Key"]
)
def test_secret_keys_are_redacted(out, key):
    structlog.get_logger().info("request", **{key: "s3nsitive-value"})
    [record] = records(out)
    assert record[key] == "***"
    assert "s3nsitive-value" not in out.getvalue()


def test_secret_file_paths_stay_readable(out):
    structlog.get_logger().info("reading", token_file="/etc/syncd/token")
    assert records(out)[0]["token_file"] == "/etc/syncd/token"


def test_nested_structures_are_redacted(out):
    structlog.get_logger().info(
        "sent",
        request={
            "headers": {"Authorization": "Basic YWdlbnQ6cGFzcw==", "Accept": "application/json"},
            "params": [{"access_token": "nested-token-value"}],
            "auth": ("agent@example.com/token", SecretStr("tuple-secret")),
        },
    )
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


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("sent Basic YWdlbnQ6cGFzcw== to host", "sent Basic *** to host"),
        ("GET /api?access_token=abc123&page=2", "GET /api?access_token=***&page=2"),
        ("password: hunter22 then", "password: *** then"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
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


# -- readable prose, redacted credentials (issue 9, item 8) ------------------------------------

# Words around "token", "password", "secret", "key" and "authorization" that are
# prose, not credentials: every one must come out exactly as it went in.
PROSE = [
    # GitHub's dead-letter line that read "this token *** see it; … give the token *** to …"
    "github: repository acme/web (route team) does not exist or this token cannot see it; "
    "check the route's team and give the token access to the repository's issues",
    "credentials refused; check email and token (API token access must be enabled in the Admin Center)",
    "Basic auth is email + token",
    "the token: it expired yesterday, ask for a new one",
    "Password: required when the account has no token",
    "a secret: nobody reads the internal note",
    "the key to the project is ENG; the api key setting is in [connectors.linear]",
    "Authorization: missing scope repo",
    "Bearer of bad news: the tracker answered 404",
    "set token_file to the file holding the token",
]


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_prose_stays_readable(out, text):
    structlog.get_logger().error("action moved to dead letter", error=text)
    assert records(out)[0]["error"] == text
    assert logs.redact_text(text) == text


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "Authorization: Bearer ***"),
        ("sent Authorization: token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "sent Authorization: token ***"),
        ("cloned with ghp_16C7e42F292c6912E7710c838347Ae178B4a today", "cloned with *** today"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop in a message", "*** in a message"),
        ("Authorization: lin_api_8f3k2m9q4w7e1r5t6y0u2i3o", "Authorization: ***"),
        ("header Basic ZW1haWxAZXhhbXBsZS5jb20vdG9rZW46czNjcmV0 refused", "header Basic *** refused"),
        ("GET https://x.test/api?page=2&api_key=plainword&b=1", "GET https://x.test/api?page=2&api_key=***&b=1"),
        ('answer {"access_token":"abc","token_type":"bearer"}', 'answer {"access_token":"***","token_type":"***"}'),
        ("proxy https://agent:hunter2@proxy.test:8080/ refused", "proxy https://agent:***@proxy.test:8080/ refused"),
        ("password: Tr0ub4dor3x was rejected", "password: *** was rejected"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk", "jwt ***"),
    ],
)
def test_credential_shapes_are_redacted(out, text, expected):
    structlog.get_logger().warning("request failed", error=text)
    assert records(out)[0]["error"] == expected


def test_configured_secret_values_are_redacted_even_when_they_look_like_words(out):
    # A configured secret is redacted wherever it stands, shaped like a credential or not.
    logs.register_secret("correcthorsebatterystaple")
    structlog.get_logger().warning("refused", error="the password correcthorsebatterystaple was refused")
    assert records(out)[0]["error"] == "the password *** was refused"
    assert "correcthorsebatterystaple" not in out.getvalue()


@pytest.mark.parametrize(
    "word,shaped",
    [
        ("cannot", False),
        ("access", False),
        ("re-check", True),
        ("abc.def-123", True),
        ("YWdlbnQ6cGFzcw==", True),
        ("McDonalds", True),
        ("hunter22", True),
        ("password", False),
        ("s3c", False),
    ],
)
def test_credential_shape(word, shaped):
    assert logs.credential_shaped(word) is shaped
