"""``syncd promise`` and ``syncd report`` through click's runner, against a config and store in tmp_path.

The store is filled directly (as tests/syncd/test_report.py does): these commands
read and write the store only, so no sandbox is needed. The clock is
``syncd.cli._now``, set per test.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from syncd import cli
from syncd.cli import main
from syncd.records import PromiseState, Ref
from syncd.store import Store
from tests.syncd.test_report import NOW, fill

pytestmark = pytest.mark.e2e

CONFIG = """\
[store]
path = "syncd.db"

[sync]
helpdesk = "zendesk"
trackers = ["linear"]
mappings = "mappings"

[connectors.zendesk]
kind = "zendesk"
url = "http://127.0.0.1:9"
email = "agent@example.com"

[connectors.linear]
kind = "linear"
url = "http://127.0.0.1:9"
teams = ["APP", "ENG"]
"""

ROUTES = """\
[routes.mobile]
tracker = "linear"
team = "APP"
promises = "standard"

[routes.mobile.match]
tags = ["mobile"]

[routes.product]
tracker = "linear"
team = "ENG"

[promises.standard]
calendar = "support-eu"
triage_sla = "4 business hours"
stale_after = "2 business days"

[calendars.support-eu]
time_zone = "Europe/Berlin"
"""

ENV = {"SYNCD_CONNECTORS__ZENDESK__TOKEN": "zd-test-token-abcdef", "SYNCD_CONNECTORS__LINEAR__API_KEY": "lin_api_test"}


class Setup:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.config = tmp_path / "syncd.toml"
        self.config.write_text(CONFIG)
        (tmp_path / "mappings").mkdir()
        (tmp_path / "mappings" / "routes.toml").write_text(ROUTES)
        self.db = tmp_path / "syncd.db"

    def invoke(self, *args: str):
        return CliRunner().invoke(main, list(args), env={**ENV, "SYNCD_CONFIG": str(self.config)})

    def store(self, **kwargs) -> Store:
        return Store(self.db, clock=lambda: NOW, **kwargs)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_now", lambda: NOW)
    setup = Setup(tmp_path)
    with setup.store() as s:
        fill(s)
    return setup


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1 and result.stderr.startswith("syncd: "), result.output
    return result.stderr


# -- promise add --------------------------------------------------------------------------------


def test_promise_add_with_a_date_due_at_close_of_business_in_the_routes_calendar(env):
    result = env.invoke("promise", "add", "#1", "an update on the crash", "--due", "2026-03-24")
    assert result.exit_code == 0, result.output
    assert "an update on the crash (by 2026-03-24 17:00 Europe/Berlin), 1 linked issue(s)" in result.output
    with env.store(readonly=True) as s:
        (made,) = [p for p in s.promises_for_ticket(Ref("zendesk", "1")) if p.origin == "cli"]
        assert made.due_at == datetime(2026, 3, 24, 16, 0, tzinfo=timezone.utc)  # 17:00 CET
        assert made.issues == (Ref("linear", "i1"),) and made.owner == "a1" and made.trigger is None
        assert made.state is PromiseState.OPEN and made.created_at == NOW
        assert result.output.startswith(f"promise {made.id[:10]} ")
        (event,) = [e for e in s.history(Ref("zendesk", "1")) if e.kind == "promise"]
        assert event.detail["promise"] == made.id and "an update on the crash" in event.summary


def test_promise_add_at_a_local_time(env):
    result = env.invoke("promise", "add", "1", "a call", "--due", "2026-03-23T10:30", "--owner", "sam")
    assert result.exit_code == 0, result.output
    with env.store(readonly=True) as s:
        made = s.list_promises(ticket=Ref("zendesk", "1"), state="open")[-1]
    assert made.due_at == datetime(2026, 3, 23, 9, 30, tzinfo=timezone.utc) and made.owner == "sam"


def test_promise_add_within_business_days_uses_the_routes_calendar(env):
    # Friday 13:00 in Berlin + 2 business days (09:00-17:00, Mon-Fri) = Tuesday 13:00 CET.
    result = env.invoke("promise", "add", "1", "an update", "--within", "2 business days")
    assert result.exit_code == 0, result.output
    with env.store(readonly=True) as s:
        made = s.list_promises(ticket=Ref("zendesk", "1"), state="open")[-1]
    assert made.due_at == datetime(2026, 3, 24, 12, 0, tzinfo=timezone.utc)


def test_business_time_needs_a_route_with_a_calendar(env):
    # Ticket 3 goes to the product route, whose promises name no calendar.
    err = one_line_error(env.invoke("promise", "add", "3", "an update", "--within", "2 business days"))
    assert "--within: '2 business days' counts business time, but route 'product' has no promise rule" in err
    ok = env.invoke("promise", "add", "3", "an update", "--within", "3 days")
    assert ok.exit_code == 0, ok.output
    with env.store(readonly=True) as s:
        assert s.list_promises(ticket=Ref("zendesk", "3"), state="open")[-1].due_at == NOW + timedelta(days=3)


def test_promise_add_when_resolved_and_an_explicit_route(env):
    result = env.invoke(
        "promise", "add", "1", "news when it ships", "--when-resolved", "--due", "2026-03-27", "--route", "product"
    )
    assert result.exit_code == 0, result.output
    with env.store(readonly=True) as s:
        made = s.list_promises(ticket=Ref("zendesk", "1"), state="open")[-1]
    assert made.trigger == "issue_resolved"
    # The product route has no calendar: the day ends at midnight UTC.
    assert made.due_at == datetime(2026, 3, 28, 0, 0, tzinfo=timezone.utc)


def test_promise_add_works_while_the_daemon_holds_the_store(env):
    with env.store() as daemon:  # holds the lock, as `syncd run` does
        result = env.invoke("promise", "add", "2", "an update", "--within", "1 business day")
        assert result.exit_code == 0, result.output
        assert len(daemon.promises_for_ticket(Ref("zendesk", "2"), active=True)) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["1", "x"],
            'say when the customer hears: --due YYYY-MM-DD[THH:MM], --within "2 business days" or --when-resolved',
        ),
        (["1", "x", "--due", "2026-03-24", "--within", "2 days"], "--due and --within both give a deadline"),
        (
            ["1", "x", "--due", "next friday"],
            "--due: not a date (got 'next friday'); write YYYY-MM-DD or YYYY-MM-DDTHH:MM (local time in Europe/Berlin)",
        ),
        (["1", "x", "--due", "2026-03-19"], "--due: 2026-03-19 17:00 Europe/Berlin has already passed"),
        (["1", "x", "--within", "soon"], '--within: not a duration (got "soon")'),
        (["1", " ", "--when-resolved"], "WHAT must not be empty"),
        (
            ["1", "x", "--when-resolved", "--route", "web"],
            "--route: unknown route 'web'; known routes: mobile, product",
        ),
        (["abc", "x", "--when-resolved"], "not a ticket id: 'abc'"),
    ],
)
def test_promise_add_bad_arguments_are_one_line_and_exit_2(env, args, message):
    assert message in one_line_error(env.invoke("promise", "add", *args))
    with env.store(readonly=True) as s:
        assert [p.origin for p in s.list_promises()].count("cli") == 2  # only fill()'s


def test_promise_add_for_a_ticket_syncd_has_not_seen(env, tmp_path):
    err = one_line_error(env.invoke("promise", "add", "404", "x", "--when-resolved"), code=1)
    assert "ticket 404 is not known to syncd yet; run `syncd once` first, or check the id" in err
    env.db.unlink()
    err = one_line_error(env.invoke("promise", "add", "1", "x", "--when-resolved"), code=1)
    assert "no store yet; run `syncd once` first" in err
    assert not env.db.exists()  # not created by the attempt


# -- promise list and cancel --------------------------------------------------------------------


def test_promise_list_filters_and_json(env):
    result = env.invoke("promise", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "STATE", "TICKET", "PROMISED", "WHEN", "OWNER"]
    assert len(lines) == 4 and "broken" in lines[2] and "#3" in lines[2]
    # Deadlines in the time zone of the ticket's route (#2 is mobile: Berlin; #3 product: UTC).
    assert "by 2026-03-25 10:00 Europe/Berlin" in lines[3] and "by 2026-03-15 09:00 UTC" in lines[2]
    data = json.loads(env.invoke("promise", "list", "--json", "--state", "open").output)
    assert [(p["ticket"], p["what"], p["due_at"]) for p in data] == [("#2", "an update", "2026-03-25T09:00:00Z")]
    data = json.loads(env.invoke("promise", "list", "--json", "--ticket", "#1").output)
    assert [p["state"] for p in data] == ["due"] and data[0]["history"][-1]["reason"] == "linked work resolved"
    assert env.invoke("promise", "list", "--ticket", "99").output == "no promises\n"
    err = one_line_error(env.invoke("promise", "list", "--state", "late"))
    assert "--state: unknown state 'late'; write one of open, due, kept, broken, cancelled" in err


def test_promise_owners_are_shown_by_name(env):
    with env.store() as s:
        s.put_snapshot(replace(s.get_snapshot(Ref("zendesk", "1")), assignee_name="Ada Novak"))
    added = env.invoke("promise", "add", "1", "a call back", "--due", "2026-03-24")
    assert added.exit_code == 0, added.output
    assert added.output.rstrip().endswith(", owner Ada Novak")
    (line,) = [ln for ln in env.invoke("promise", "list").output.splitlines() if "a call back" in ln]
    assert line.endswith("by 2026-03-24 17:00 Europe/Berlin  Ada Novak") and " a1" not in line
    data = json.loads(env.invoke("promise", "list", "--json", "--ticket", "1").output)
    assert {(p["owner"], p["owner_name"]) for p in data if p["what"] == "a call back"} == {("a1", "Ada Novak")}


def test_promise_cancel_by_prefix(env):
    with env.store(readonly=True) as s:
        (target,) = s.list_promises(state="open")
    result = env.invoke("promise", "cancel", target.id[:8], "--reason", "customer left")
    assert result.exit_code == 0 and result.output == f"promise {target.id[:10]} cancelled\n"
    with env.store(readonly=True) as s:
        cancelled = s.get_promise(target.id)
        assert cancelled.state is PromiseState.CANCELLED and cancelled.history[-1].reason == "customer left"
        assert any(e.kind == "promise" and "customer left" in e.summary for e in s.history(target.ticket))
    again = one_line_error(env.invoke("promise", "cancel", target.id[:8]), code=1)
    assert "is already cancelled; only open or due promises can be cancelled" in again
    assert "no promise with an id starting 'zzz'" in one_line_error(env.invoke("promise", "cancel", "zzz"))


# -- report -------------------------------------------------------------------------------------


def report_json(env, *args: str) -> dict:
    result = env.invoke("report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_report_json_figures(env):
    data = report_json(env)
    s = data["summary"]
    assert (s["stale"], s["owner_gaps"], s["blocked"], s["promises_due"], s["promises_broken"]) == (3, 3, 1, 1, 1)
    assert (s["handoffs"], s["limbo_median_hours"], s["limbo_p90_hours"], s["rejected"], s["rework"]) == (
        3,
        21.0,
        48.0,
        2,
        1,
    )
    assert data["now"] == "2026-03-20T12:00:00Z" and data["since"] is None


def test_report_per_route_and_since(env):
    mobile = report_json(env, "--route", "mobile")
    assert mobile["route"] == "mobile" and mobile["summary"]["handoffs"] == 1
    # The mobile route counts business time in Berlin: #2 (needs context since Wednesday 12:00 CET)
    # has waited 2 business days only at Friday 12:00 CET, which is 11:00 UTC: stale at NOW.
    assert {f["ticket"] for f in mobile["findings"] if f["kind"] == "stale"} == {"#1", "#2"}
    recent = report_json(env, "--since", "7 days")
    assert recent["since"] == "2026-03-13T12:00:00Z"
    figures = recent["summary"]
    assert (figures["handoffs"], figures["rework"], figures["promises_broken"], figures["rejected"]) == (0, 0, 1, 2)
    dated = report_json(env, "--since", "2026-03-16", "--route", "product")
    assert dated["since"] == "2026-03-16T00:00:00Z" and dated["summary"]["promises_broken"] == 0
    # A date is read in the route's calendar: midnight in Berlin.
    assert report_json(env, "--since", "2026-03-16", "--route", "mobile")["since"] == "2026-03-15T23:00:00Z"


def test_report_table_and_csv_to_a_file(env):
    table = env.invoke("report", "--format", "table")
    assert table.exit_code == 0, table.output
    assert table.output.startswith("syncd review at 2026-03-20 12:00 UTC (all time)")
    # One format for every time in the table: no ISO stamps beside it.
    assert not re.search(r"\d{4}-\d\d-\d\dT", table.output)
    assert "flagged 2026-03-10 09:00 UTC, handed over 2026-03-10 13:00 UTC" in table.output
    assert "Owner gaps:" in table.output and "no assignee on ENG-i1" in table.output
    out = env.dir / "review.csv"
    result = env.invoke("report", "--output", str(out))  # the format follows the suffix
    assert result.exit_code == 0 and result.output == f"report written to {out}\n"
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["kind"] for r in rows} >= {
        "stale",
        "owner_gap",
        "blocked",
        "promise_due",
        "promise_broken",
        "limbo",
        "rejected",
        "rework",
    }
    # Not on a terminal and no --format: JSON, for the next program in the pipe.
    assert json.loads(env.invoke("report").output)["summary"]["rework"] == 1


def test_report_reads_while_the_daemon_holds_the_store(env):
    with env.store():
        assert report_json(env)["summary"]["promises_due"] == 1


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["--route", "web"], "--route: unknown route 'web'; known routes: mobile, product", 2),
        (["--format", "xml"], "--format: unknown format 'xml'; write table, json or csv", 2),
        (["--since", "last week"], "--since: not a date or a span (got 'last week')", 2),
    ],
)
def test_report_bad_arguments(env, args, message, code):
    assert message in one_line_error(env.invoke("report", *args), code)


def test_report_without_a_store_says_what_to_do(env):
    env.db.unlink()
    assert "no store yet; run `syncd once` first" in one_line_error(env.invoke("report"), code=1)


def test_help_lists_the_new_commands(env):
    result = env.invoke("--help")
    assert "  promise" in result.output and "  report" in result.output
    assert all(f"  {c}" in env.invoke("promise", "--help").output for c in ("add", "list", "cancel"))
