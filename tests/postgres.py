"""A PostgreSQL server for the tests, found or started, never silently missing.

In order:

1. ``$SYNCD_TEST_PG_URL``, when set (CI or a developer's own server);
2. the machine's server on 127.0.0.1:5432 (database ``test``, users
   ``postgres`` then ``root``, trust authentication), when it answers;
3. an embedded server from the package index (``pgserver``, in the test
   extra), started once under the temporary directory and shared by the
   test processes.

``SYNCD_TEST_PG=embedded`` skips the first two (to try the fallback);
``SYNCD_TEST_PG=skip`` skips the PostgreSQL tests, saying so, for a
developer who asks. Otherwise a test that needs PostgreSQL and finds none
fails with the reason of each attempt: it is never skipped in silence.

Each test gets a schema of its own (``t_<random>``), dropped after it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import pytest

LOCAL_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
EMBEDDED_DIR = Path(tempfile.gettempdir()) / "syncd-test-pgserver"


def _answers(url: str) -> str | None:
    """None when a connection to ``url`` works, else why not (one line)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure is a reason to try the next way
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _embedded() -> tuple[str | None, str]:
    try:
        import pgserver
    except ImportError:
        return None, "pgserver is not installed (pip install -e '.[test]')"
    try:
        # "stop": the server stops when the last process using it exits.
        server = pgserver.get_server(EMBEDDED_DIR, cleanup_mode="stop")
        url = server.get_uri()
    except Exception as exc:
        return None, f"pgserver could not start a server in {EMBEDDED_DIR}: {exc}"
    why = _answers(url)
    return (url, "") if why is None else (None, f"the embedded server at {url} does not answer: {why}")


def find_server() -> tuple[str | None, str, list[str]]:
    """(url, how it was found, why each earlier way failed)."""
    tried: list[str] = []
    mode = os.environ.get("SYNCD_TEST_PG", "").strip().lower()
    if mode != "embedded":
        url = os.environ.get("SYNCD_TEST_PG_URL", "").strip()
        if url:
            why = _answers(url)
            if why is None:
                return url, "SYNCD_TEST_PG_URL", tried
            tried.append(f"SYNCD_TEST_PG_URL={url}: {why}")
        for url in LOCAL_URLS:
            why = _answers(url)
            if why is None:
                return url, "the local server on 127.0.0.1:5432", tried
            tried.append(f"{url}: {why}")
    embedded, why = _embedded()
    if embedded is not None:
        return embedded, "an embedded server (pgserver)", tried
    tried.append(why)
    return None, "", tried


_FOUND: tuple[str | None, str, list[str]] | None = None


def server_url() -> str:
    """The server's URL; fails the test (or skips, only when asked) when there is none."""
    global _FOUND
    if os.environ.get("SYNCD_TEST_PG", "").strip().lower() == "skip":
        pytest.skip("SYNCD_TEST_PG=skip: the PostgreSQL tests were asked to be skipped")
    if _FOUND is None:
        _FOUND = find_server()
    url, _how, tried = _FOUND
    if url is None:
        pytest.fail(
            "no PostgreSQL server for the tests: " + "; ".join(tried) + ". Set SYNCD_TEST_PG_URL to a server "
            "(any database this user may create schemas in), or install the test extra for the embedded one",
            pytrace=False,
        )
    return url


def new_schema_name() -> str:
    return "t_" + secrets.token_hex(6)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
