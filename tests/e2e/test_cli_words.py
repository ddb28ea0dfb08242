"""What people read, through the command line and the sandbox: errors that name the
service, tables with headers, whole errors, and notes that say what changed."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from connectors.base import find_markers
from syncd.cli import main
from syncd.sandbox.harness import Playground
from syncd.store import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


def invoke(pg: Playground, *args: str, env: dict | None = None):
    environment = {**pg.env, "SYNCD_CONFIG": str(pg.config_path), **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment)


def one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.output
    return result.stderr


def test_linking_an_issue_the_tracker_does_not_have_names_the_tracker(pg):
    assert invoke(pg, "once").exit_code == 0
    err = one_line_error(invoke(pg, "link", "4", "ENG-999"))
    assert err.startswith("syncd: ENG-999 was not found in Linear: check the key")
    assert "INPUT_ERROR" not in err and "SyncdIssue" not in err
    err = one_line_error(invoke(pg, "link", "4", "PLAT-999"))
    assert err.startswith("syncd: PLAT-999 was not found in Jira")
    err = one_line_error(invoke(pg, "link", "99999", "ENG-1"))
    assert err.startswith("syncd: ticket 99999 was not found in Zendesk")


def test_history_of_a_ticket_syncd_never_read_exits_1(pg):
    assert invoke(pg, "once").exit_code == 0
    err = one_line_error(invoke(pg, "history", "99999"))
    assert "ticket 99999 is not known to syncd" in err
    known = invoke(pg, "history", "4")  # read, never linked
    assert known.exit_code == 0 and known.output == "nothing recorded for ticket 4 yet\n"
    linked = invoke(pg, "history", "1")
    assert linked.exit_code == 0 and "linked to ENG-1" in linked.output
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC  linked ", linked.output)  # the one time format


def test_links_is_a_table_with_subjects_and_an_issue_filter(pg):
    assert invoke(pg, "once").exit_code == 0
    result = invoke(pg, "links")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["TICKET", "SUBJECT", "ISSUE", "STATE", "LINKED", "VIA", "SINCE"]
    # Aligned: every column starts where its header does.
    starts = [header.index(word) for word in ("SUBJECT", "ISSUE", "STATE", "LINKED VIA", "SINCE")]
    for row in rows:
        assert all(row[s - 2 : s] == "  " and row[s] != " " for s in starts), row
    sso = next(row for row in rows if row.startswith("#1 "))
    assert "SSO login loops back to the sign-in page" in sso and "ENG-1" in sso
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$", sso)

    only = invoke(pg, "links", "--issue", "eng-4").output.splitlines()
    assert len(only) == 2 and " ENG-4 " in only[1]
    assert invoke(pg, "links", "--issue", "ENG-404").output == "no links to ENG-404\n"
    data = json.loads(invoke(pg, "links", "--issue", "ENG-4", "--json").output)
    assert [(d["issue"], d["subject"]) for d in data] == [("ENG-4", data[0]["subject"])] and data[0]["subject"]


def test_outbox_show_prints_the_whole_error(pg):
    env = {"SYNCD_DAEMON__MAX_ATTEMPTS": "1"}
    assert invoke(pg, "once", env=env).exit_code == 0
    ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
    pg.agent_note(ticket, f"customer hit {key}")
    pg.zendesk.inject("500", r"PUT /api/v2/tickets/\{id\}$")
    assert invoke(pg, "once", env=env).exit_code == 1
    with Store(pg.store_path, readonly=True) as store:
        (row,) = [r for r in store.list_outbox(limit=1000) if r.target == str(ticket) and r.last_error]
    shown = invoke(pg, "outbox", "show", str(row.id))
    assert shown.exit_code == 0, shown.output
    assert row.last_error and row.last_error.strip() in shown.output.replace("\n  ", "\n")
    assert f"ticket.update to zendesk:{ticket}" in shown.output and key in shown.output  # what it writes
    data = json.loads(invoke(pg, "outbox", "show", str(row.id), "--json").output)
    assert data["last_error"] == row.last_error and data["payload"] == row.payload
    missing = one_line_error(invoke(pg, "outbox", "show", "999999"), code=2)
    assert "no action with id 999999" in missing


def test_a_github_issue_assigned_says_who_took_it_not_a_move_to_the_same_state(pg):
    ticket, key = pg.seed.tickets["reset"], pg.seed.keys("github")["push"]
    pg.agent_note(ticket, f"Same as {key}")
    assert invoke(pg, "once").exit_code == 0
    before = [c["body"] for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
    pg.world("github").assign(key, "ada-novak")
    assert invoke(pg, "once").exit_code == 0
    new = [c["body"] for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])][len(before) :]
    assert len(new) == 1, new
    assert "moved from" not in new[0]
    assert new[0].startswith(f"{key} (Open) is now with ") and "(was: unassigned)" in new[0]


def test_notes_name_the_tracker_when_two_trackers_could_share_a_key(pg):
    """Linear following every team (teams = []) could have a PLAT-3 too: Jira's is named."""
    text = pg.config_path.read_text()
    assert text.count('teams = ["ENG", "APP"]') == 1
    pg.config_path.write_text(text.replace('teams = ["ENG", "APP"]', "teams = []"))
    ticket, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
    pg.agent_note(ticket, f"Platform tracks this as {key}.")
    assert invoke(pg, "once").exit_code == 0
    notes = [c["body"] for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
    assert any(n.startswith(f"Linked to {key} in Jira: ") for n in notes), notes
    status = pg.zendesk.field_value(ticket, pg.seed.linked_issue_status_field_id)
    assert status.startswith(f"{key} in Jira: "), status


def test_with_keys_no_other_tracker_could_have_the_note_says_the_key_alone(pg):
    ticket, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
    pg.agent_note(ticket, f"Platform tracks this as {key}.")
    assert invoke(pg, "once").exit_code == 0
    notes = [c["body"] for c in pg.zendesk.ticket_comments(ticket) if find_markers(c["body"])]
    assert any(n.startswith(f"Linked to {key}: ") for n in notes), notes
