"""Logging setup: structlog for syncd, the stdlib routed through it, secrets redacted.

Named ``logs`` rather than ``logging`` so that nothing (a script run from
inside the package, a careless ``from syncd import *``) can shadow the
standard library module.

Output is one JSON object per line when the stream is not a terminal (what
journald and log shippers want) and a readable rendering on a terminal.
Every event passes through :func:`redact` last, after exceptions have been
turned into text, so a secret cannot reach the output through a traceback
or a stdlib logger either.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any, TextIO

import structlog
from pydantic import SecretStr

from syncd.records import Ref

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "json", "console")
REDACTED = "***"

# Keys whose values are secrets wherever they appear in an event (any depth).
SECRET_KEY_RE = re.compile(
    r"token|passw(or)?d|secret|api[_-]?key|authori[sz]ation|cookie|credential|private[_-]?key",
    re.IGNORECASE,
)
# What a credential looks like when it stands in prose, after "Bearer", "Basic",
# "Token" or "password:": eight or more token characters with a digit, a
# punctuation mark of the base64/JWT/URL alphabets, or mixed case. An ordinary
# word ("the token cannot see it", "Basic auth", "give the token access") has
# none of these and stays readable.
_VALUE = r"[A-Za-z0-9_.~+/=-]"


def credential_shaped(value: str) -> bool:
    """True if ``value`` looks like a token, key or password rather than a word."""
    if len(value) < 8 or not re.fullmatch(f"{_VALUE}+", value):
        return False
    return bool(re.search(r"[0-9_.~+/=-]", value)) or (value[1:] != value[1:].lower())


# "Authorization: Basic dXNlcg==", "Bearer abc.def-123", "token ghp_…" (the scheme
# word, then the value, redacted only when it is credential-shaped).
CREDENTIAL_RE = re.compile(rf"\b(Basic|Bearer|Token)(\s+)({_VALUE}+)", re.IGNORECASE)
# "Authorization: lin_api_…" (Linear sends its key without a scheme).
AUTHORIZATION_RE = re.compile(
    rf"\b(Authori[sz]ation[\"']?\s*[:=]\s*[\"']?)(?!Basic\b|Bearer\b|Token\b)({_VALUE}+)", re.IGNORECASE
)
# key=value pairs in URLs, JSON and messages: "?access_token=abc&x=1", '"password": "x"',
# "password: hunter22". After "=", ":" without a space, or in quotes, the value is
# syntax and always redacted; after ": " in prose only a credential-shaped one.
KEY_VALUE_RE = re.compile(
    r"\b([\w-]*(?:token|passw(?:or)?d|secret|api[_-]?key)[\w-]*)([\"']?)(\s*[=:]\s*)([\"']?)"
    r"(?!\*\*\*)([^\s&,;\"'}]+)",
    re.IGNORECASE,
)
# Credentials recognisable on their own, wherever they stand: GitHub, Linear,
# Slack and Atlassian tokens by their documented prefixes, and JWTs.
PREFIXED_RE = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|lin_(?:api|oauth)_[A-Za-z0-9]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|ATATT[A-Za-z0-9_=-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# A password in a URL: https://user:password@host/.
URL_PASSWORD_RE = re.compile(r"(://[^/\s:@]+:)([^/\s@]+)(@)")
# Registering very short values would blank out ordinary words in every line.
MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_installed_handler: logging.Handler | None = None


def register_secret(value: str | SecretStr | None) -> None:
    """Make sure ``value`` never appears in any log output from now on."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.add(value)


def _is_secret_key(key: Any) -> bool:
    # Paths to secret files are not secrets and help when reading the logs.
    return isinstance(key, str) and bool(SECRET_KEY_RE.search(key)) and not key.endswith(("_file", "_path"))


def _key_value(m: re.Match) -> str:
    key, q1, sep, q2, value = m.groups()
    syntax = bool(q1 or q2) or "=" in sep or not sep.endswith((" ", "\t"))
    if not syntax and not credential_shaped(value):
        return m.group(0)
    return f"{key}{q1}{sep}{q2}{REDACTED}"


def redact_text(text: str) -> str:
    """``text`` with registered secrets and credential-shaped strings replaced.

    Ordinary words stay: only the configured secret values, strings shaped
    like credentials and the values of key=value pairs are replaced.
    """
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = PREFIXED_RE.sub(REDACTED, text)
    text = URL_PASSWORD_RE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    text = CREDENTIAL_RE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}" if credential_shaped(m.group(3)) else m.group(0), text
    )
    text = AUTHORIZATION_RE.sub(
        lambda m: f"{m.group(1)}{REDACTED}" if credential_shaped(m.group(2)) else m.group(0), text
    )
    return KEY_VALUE_RE.sub(_key_value, text)


def redact_value(value: Any, key: Any = None) -> Any:
    """A copy of ``value`` (dicts, lists, tuples walked) with secrets replaced."""
    if isinstance(value, SecretStr):
        return REDACTED
    if _is_secret_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Ref):  # a named tuple, logged as the text it reads as (zendesk:42), not as a list
        return str(value)
    if isinstance(value, dict):
        return {k: redact_value(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [redact_value(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace every secret in the event."""
    return {key: redact_value(value, key) for key, value in event_dict.items()}


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text here so that redact() sees them.
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        redact,
    ]


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and the stdlib ``logging`` module to ``stream``.

    ``fmt="auto"`` picks console rendering on a terminal and JSON lines
    otherwise. Calling it again replaces the previous configuration.
    """
    global _installed_handler
    level = level.lower()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    stream = stream if stream is not None else sys.stderr
    console = fmt == "console" or (fmt == "auto" and _is_tty(stream))
    renderer: Any
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_tty(stream))
    else:
        renderer = structlog.processors.JSONRenderer(default=str)

    shared = _shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
    root.addHandler(handler)
    _installed_handler = handler
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    # Their DEBUG lines carry URLs and headers and add nothing day to day.
    for noisy in ("requests", "urllib3"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Undo :func:`configure_logging` (for tests and for programs embedding syncd)."""
    global _installed_handler
    if _installed_handler is not None:
        logging.getLogger().removeHandler(_installed_handler)
        _installed_handler = None
    structlog.reset_defaults()
