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
        pytest.skip(
            f"{path} is absent: ../shared (API specs and recorded fixtures) sits beside "
            "the repository in CI; clone it there to run this test"
        )
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
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=logs._shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(default=str),
            ],
        )
    )
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


def _leak_check_last(items):
    """The leak check sees the whole session only if it runs last."""
    last = [
        item
        for item in items
        if item.nodeid.startswith("tests/test_no_secrets.py::") and item.name.startswith("test_nothing_the_suite_saw")
    ]
    items[:] = [item for item in items if item not in last] + last


# --- time: the suite at every hour ---------------------------------------------------------------
#
# A test must give the same result whatever the machine's clock and time zone
# say: syncd reads time only through the clocks it is given. The tests that
# deal in time (TIME_SENSITIVE below, or marked ``time_sensitive``) run with
# the process's wall clock moved (time-machine: datetime.now, date.today,
# time.time, time.localtime ... in every thread) to an instant of a matrix, so
# that a hidden read of the real clock changes their outcome:
#
#   --clocks=one      (default) one instant, the hour issue 9's failure was seen at;
#   --clocks=sample   the two instants of E2E_EDGES;
#   --clocks=matrix   "hourly" tests at every hour of one week and at every
#                     edge of EDGES (midnight UTC and Berlin, the DST changes of
#                     Europe/Berlin, the example calendar's zone, and of
#                     America/New_York, the tests' Jira user's, month and year
#                     ends, a leap day); "edges" tests at every edge; "sample"
#                     tests at E2E_EDGES.
#
# A test that keeps its own clock takes its start from the ``base_instant``
# fixture; the machine's clock is then set apart from it (MACHINE_SKEW, ahead
# or behind), as on a machine whose clock is not the app's. `make test` runs
# the suite with --clocks=matrix and the time-sensitive tests under each TZ of
# TEST_ZONES (Makefile); docs/reliability.md, "Time: the suite at every hour".

from datetime import datetime, timedelta, timezone  # noqa: E402

UTC = timezone.utc
# 2026-12-01 21:50 UTC: a fresh clone's Jira escalation test failed at this hour.
DEFAULT_INSTANT = datetime(2026, 12, 1, 21, 50, tzinfo=UTC)
MACHINE_SKEW = timedelta(days=1, hours=3, minutes=17)
WEEK_START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday, 01:00 in Berlin
HOURS_OF_A_WEEK = [WEEK_START + timedelta(hours=h) for h in range(7 * 24)]
EDGES = {
    "before-midnight-utc": datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC),
    "after-midnight-utc": datetime(2026, 11, 25, 0, 0, 30, tzinfo=UTC),
    "before-midnight-berlin": datetime(2026, 11, 25, 22, 59, 30, tzinfo=UTC),
    "after-midnight-berlin": datetime(2026, 11, 25, 23, 0, 30, tzinfo=UTC),
    # Europe/Berlin: 02:00 CET → 03:00 CEST on 29 March, 03:00 CEST → 02:00 CET on 25 October 2026.
    "berlin-dst-start-before": datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC),
    "berlin-dst-start-after": datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC),
    "berlin-dst-end-before": datetime(2026, 10, 25, 0, 59, 30, tzinfo=UTC),
    "berlin-dst-end-after": datetime(2026, 10, 25, 1, 0, 30, tzinfo=UTC),
    # America/New_York: 02:00 EST → 03:00 EDT on 8 March, 02:00 EDT → 01:00 EST on 1 November 2026.
    "new-york-dst-start-before": datetime(2026, 3, 8, 6, 59, 30, tzinfo=UTC),
    "new-york-dst-start-after": datetime(2026, 3, 8, 7, 0, 30, tzinfo=UTC),
    "new-york-dst-end-before": datetime(2026, 11, 1, 5, 59, 30, tzinfo=UTC),
    "new-york-dst-end-after": datetime(2026, 11, 1, 6, 0, 30, tzinfo=UTC),
    "month-end": datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC),
    "year-end": datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),
    "new-year": datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
}
# The "sample" tests' share of the edges (a store or a sandbox each: tens of
# milliseconds to a second a test): the machine a day after the example
# Monday's test clock, near midnight UTC, and a month before it, in the hour
# Berlin's clocks go back.
E2E_EDGES = ("before-midnight-utc", "berlin-dst-end-after")

# Where time matters, by path. In the matrix: "hourly" tests (pure, about one
# millisecond each) run at every hour of a week and at every edge, "edges" tests
# at every edge, "sample" ones (stores, sandboxes: tens of milliseconds and
# more) at E2E_EDGES. A test elsewhere joins with @pytest.mark.time_sensitive
# (kind="hourly" or "edges"; "sample" without).
TIME_SENSITIVE = {
    "tests/mappings/test_calendar.py": "hourly",
    "tests/mappings/test_promises.py": "hourly",
    "tests/mappings/test_handoff_plan.py": "hourly",
    "tests/mappings/test_stage_plan.py": "edges",
    "tests/mappings/test_stages.py": "edges",
    "tests/mappings/test_review.py": "edges",
    "tests/mappings/test_acceptance.py": "edges",
    "tests/syncd/test_report.py": "edges",
    "tests/connectors/jira/test_jira.py": "edges",
    "tests/connectors/zendesk/test_zendesk.py": "edges",
    "tests/syncd/test_store_promises.py": "sample",
    "tests/syncd/test_store_stages.py": "sample",
    "tests/connectors/jira/test_jira_fake.py": "sample",
    "tests/connectors/zendesk/test_zendesk_fake.py": "sample",
    "tests/e2e/test_escalation_trackers.py": "sample",
    "tests/e2e/test_handoff.py": "sample",
    "tests/e2e/test_stages.py": "sample",
    "tests/e2e/test_report_cli.py": "sample",
}


def pytest_addoption(parser):
    parser.addoption(
        "--clocks",
        choices=("one", "sample", "matrix"),
        default="one",
        help="the machine clocks the time-sensitive tests run under (tests/conftest.py)",
    )


def _time_class(definition) -> str | None:
    try:
        where = Path(definition.path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        where = ""
    for prefix, kind in TIME_SENSITIVE.items():
        if where.startswith(prefix):
            return kind
    marker = definition.get_closest_marker("time_sensitive")
    if marker is not None:
        return marker.kwargs.get("kind", "sample")
    return None


def _instant_id(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def clock_instants(mode: str, kind: str) -> list[tuple[str, datetime]]:
    """(id, instant) pairs a test of this kind runs at under --clocks=mode."""
    if mode == "one":
        return [("at-default", DEFAULT_INSTANT)]
    if mode == "sample" or kind == "sample":
        return [(name, EDGES[name]) for name in E2E_EDGES]
    edges = list(EDGES.items())
    if kind == "hourly":
        return [(f"hour-{_instant_id(i)}", i) for i in HOURS_OF_A_WEEK] + edges
    return edges


def pytest_generate_tests(metafunc):
    kind = _time_class(metafunc.definition)
    if kind is None or "clock_point" not in metafunc.fixturenames:
        return
    points = clock_instants(metafunc.config.getoption("--clocks"), kind)
    metafunc.parametrize(
        "clock_point",
        [(i, instant) for i, (_, instant) in enumerate(points)],
        ids=[name for name, _ in points],
        indirect=True,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if _time_class(item) is not None and item.get_closest_marker("time_sensitive") is None:
            item.add_marker(pytest.mark.time_sensitive)
    _leak_check_last(items)


@pytest.fixture
def clock_point(request) -> tuple[int, datetime]:
    """(index, instant) of the matrix this test runs at; the default instant outside it."""
    return getattr(request, "param", (0, DEFAULT_INSTANT))


@pytest.fixture
def base_instant(clock_point) -> datetime:
    """Where a test's own clock starts: the matrix's instant."""
    return clock_point[1]


@pytest.fixture(autouse=True)
def _machine_clock(request, clock_point):
    """Move the process's wall clock for a time-sensitive test (see above)."""
    kind = _time_class(request.node)
    if kind is None:
        yield None
        return
    import time_machine

    index, instant = clock_point
    machine = instant
    if "base_instant" in request.fixturenames:  # the test's clock starts here: keep the machine apart
        machine = instant + (MACHINE_SKEW if index % 2 == 0 else -MACHINE_SKEW)
    # Pure tests see a frozen clock; the others (servers, threads, timeouts) a ticking one.
    with time_machine.travel(machine, tick=kind == "sample"):
        yield machine


def pytest_configure(config):
    """A TZ the machine cannot load silently means UTC: then a TZ run would prove nothing."""
    import os
    import time

    name = os.environ.get("TZ", "")
    if "/" not in name:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        expected = ZoneInfo(name).utcoffset(datetime.now(UTC))
    except (ZoneInfoNotFoundError, ValueError):
        raise pytest.UsageError(f"TZ={name}: no such time zone on this machine (install tzdata)")
    if timedelta(seconds=time.localtime().tm_gmtoff) != expected:
        raise pytest.UsageError(
            f"TZ={name} is not in effect (local offset {time.strftime('%z')}, expected {expected}): install tzdata"
        )


# --- PostgreSQL: a server found or started for the store tests (tests/postgres.py) ----------------


@pytest.fixture
def pg_store_target():
    """(url, schema) of a fresh, empty schema on the tests' PostgreSQL server, dropped afterwards."""
    from tests import postgres

    url = postgres.server_url()
    schema = postgres.new_schema_name()
    yield url, schema
    postgres.drop_schema(url, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request) -> str:
    """Runs a store test once per backend."""
    return request.param


@pytest.fixture
def store_opener(store_backend, tmp_path, request):
    """Opens the store of this test (the same one each call) on the backend of ``store_backend``."""
    from syncd.store import Store

    if store_backend == "sqlite":
        path = tmp_path / "syncd.db"
        return lambda **kw: Store(path, **kw)
    url, schema = request.getfixturevalue("pg_store_target")
    return lambda **kw: Store(url, schema=schema, **kw)
