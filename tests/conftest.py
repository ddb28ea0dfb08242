"""Fixtures shared by the whole suite.

``../shared`` (beside the repository) holds the official API descriptions and
recorded traffic. CI has it; a user's fresh clone may not, and then the tests
that need it skip and say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
SPECS = SHARED / "specs"
FIXTURES = SHARED / "fixtures"


def require_shared(path: Path) -> Path:
    """Return ``path`` under ../shared, or skip the test naming what is missing."""
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (API specs and recorded fixtures) sits beside "
                    "the repository in CI; clone it there to run this test")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return require_shared(FIXTURES)


@pytest.fixture
def specs_dir() -> Path:
    return require_shared(SPECS)


# --- a suite-wide watch for leaked secrets ---------------------------------------------------------
#
# Everything the tests make syncd say is recorded here: every log record
# (through the same redacting pipeline production uses, at debug level), every
# CLI result the tests see (stdout, stderr, exception), and every child
# process's output read through communicate(). tests/test_no_secrets.py runs
# last and checks it all, plus every SQLite store the tests left behind,
# against every known secret.


class LeakWatch:
    """What the suite saw, as (where, text) pairs."""

    def __init__(self) -> None:
        import io

        self.seen: list[tuple[str, str]] = []
        self.stream = io.StringIO()  # the default log destination while a test runs
        self.test = "session"

    def add(self, where: str, text: object) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if text:
            self.seen.append((f"{self.test}: {where}", str(text)))

    def flush_stream(self) -> None:
        self.add("log output", self.stream.getvalue())
        self.stream.seek(0)
        self.stream.truncate()


LEAK_WATCH = LeakWatch()


def _record_handler(watch: LeakWatch):
    """A root handler rendering each record as production does (redaction included)."""
    import logging

    import structlog

    from syncd import logs

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                watch.add(f"log record {record.name}", self.format(record))
            except Exception as exc:  # a record that cannot be rendered is itself worth seeing
                watch.add(f"log record {record.name} (unrenderable: {exc!r})", repr(record.__dict__))

    handler = Recorder(level=logging.NOTSET)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=logs._shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(default=str)]))
    return handler


@pytest.fixture(scope="session", autouse=True)
def _leak_watch():
    import logging
    import subprocess

    from click.testing import CliRunner

    watch = LEAK_WATCH
    handler = _record_handler(watch)
    logging.getLogger().addHandler(handler)
    invoke, communicate = CliRunner.invoke, subprocess.Popen.communicate

    def recording_invoke(self, cli, args=None, *a, **kw):
        result = invoke(self, cli, args, *a, **kw)
        watch.add(f"CLI {args} output", result.output)
        try:
            watch.add(f"CLI {args} stderr", result.stderr)
        except ValueError:
            pass
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            watch.add(f"CLI {args} exception", "".join(traceback.format_exception(*result.exc_info)))
        return result

    def recording_communicate(self, *a, **kw):
        out, err = communicate(self, *a, **kw)
        watch.add(f"process {self.args} stdout", out)
        watch.add(f"process {self.args} stderr", err)
        return out, err

    CliRunner.invoke = recording_invoke
    subprocess.Popen.communicate = recording_communicate
    try:
        yield watch
    finally:
        CliRunner.invoke, subprocess.Popen.communicate = invoke, communicate
        logging.getLogger().removeHandler(handler)


@pytest.fixture(autouse=True)
def _log_into_the_watch(request, _leak_watch):
    """Each test starts with production logging at debug level, written into the watch."""
    from syncd import logs

    _leak_watch.test = request.node.nodeid
    logs.configure_logging("debug", "json", _leak_watch.stream)
    yield
    _leak_watch.flush_stream()


def pytest_collection_modifyitems(session, config, items):
    """The leak check sees the whole session only if it runs last."""
    last = [item for item in items if item.nodeid.startswith("tests/test_no_secrets.py::")
            and item.name.startswith("test_nothing_the_suite_saw")]
    items[:] = [item for item in items if item not in last] + last
