"""``syncd once --dry-run`` and the choice for links that exist before syncd watches, through the sandbox.

A dry run reads the services as a real run does, but sends no write and
keeps nothing: the sandbox records no write request and the store file is
the same, byte for byte, before and after. What it prints is what the real
run then writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e

QUERIES = Path(__file__).resolve().parents[2] / "connectors" / "linear" / "queries.py"


def linear_mutations() -> set[str]:
    """The names of the GraphQL mutations the Linear connector sends (its writes)."""
    return set(re.findall(r"mutation (\w+)", QUERIES.read_text()))


def write_requests(pg: Playground) -> list[str]:
    """Every request the sandbox served that writes: a Zendesk method other than GET, a Linear mutation."""
    mutations = linear_mutations()
    assert mutations  # the connector's writes are named: this check can fail
    counts = pg.sandbox.counts()
    zendesk = [e for e in counts["zendesk"] if not e.startswith("GET ")]
    linear = [e for e in counts["linear"] if e.rsplit(" ", 1)[-1] in mutations]
    return zendesk + linear


def invoke(pg: Playground, *args: str):
    return CliRunner().invoke(main, list(args), env=pg.cli_env())


def files(pg: Playground) -> dict[str, str]:
    """Digests of the store's data: its file and its write-ahead log (absent and empty alike).

    SQLite's -shm (an index of the log in shared memory, rebuilt by any reader) holds no data."""
    wal = pg.store_path.with_name(pg.store_path.name + "-wal")
    return {
        "store": hashlib.sha256(pg.store_path.read_bytes()).hexdigest(),
        "wal": hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest(),
    }


def syncd_notes(pg: Playground, ticket: int) -> list[str]:
    return [c["body"] for c in pg.zendesk.ticket_comments(ticket) if not c["public"] and "syncd:" in c["body"]]


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


def test_first_dry_run_sends_nothing_creates_no_store_and_says_what_the_real_run_writes(pg):
    pg.sandbox.reset_counts()
    result = invoke(pg, "once", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert pg.sandbox.total_requests() > 0  # it read the feeds
    assert write_requests(pg) == []
    assert not pg.store_path.exists()  # nothing kept: not even an empty store
    planned = json.loads(result.output)
    assert planned["dry_run"] is True and planned["writes"] > 0 and planned["already_waiting"] == 0
    ticket = pg.seed.tickets["csv"]  # the seed links it to the CSV issue
    [shown] = [t for t in planned["tickets"] if t["id"] == str(ticket)]
    assert shown["key"] == f"ticket #{ticket}" and shown["title"] == "CSV export times out for large reports"
    assert any(w["what"].startswith("internal note: Linked to") for w in shown["writes"])
    assert planned["issues"] and all(i["writes"] for i in planned["issues"])
    assert sum(planned["totals"].values()) == planned["writes"]

    text = invoke(pg, "once", "--dry-run")
    assert text.exit_code == 0
    assert text.output.startswith("dry run: nothing was sent and the store is unchanged\n")
    assert f"ticket #{ticket}" in text.output and f"would write {planned['writes']} time(s)" in text.output

    pg.sandbox.reset_counts()
    real = invoke(pg, "once", "--json")
    assert real.exit_code == 0, real.output
    report = json.loads(real.output)
    assert report["delivery"]["done"] == planned["writes"]  # what the dry run announced, no more, no less
    assert report["pending"] == 0 and report["exit"] == 0
    assert write_requests(pg)


def test_dry_run_after_a_change_leaves_the_store_file_as_it_was(pg):
    assert invoke(pg, "once").exit_code == 0
    ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["csv"]
    pg.agent_note(ticket, f"Same as {key}")
    before = files(pg)
    pg.sandbox.reset_counts()

    result = invoke(pg, "once", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert write_requests(pg) == []
    assert files(pg) == before
    planned = json.loads(result.output)
    [shown] = [t for t in planned["tickets"] if t["id"] == str(ticket)]
    assert [w["what"] for w in shown["writes"]][0].startswith(f"internal note: Linked to {key}")
    assert syncd_notes(pg, ticket) == []

    # The real run makes that very write, and the dry run's view was kept nowhere.
    real = invoke(pg, "once", "--json")
    assert real.exit_code == 0 and json.loads(real.output)["delivery"]["done"] == planned["writes"]
    assert any(n.startswith(f"Linked to {key}") for n in syncd_notes(pg, ticket))
    invoke(pg, "once")  # reads the echoes of its own writes
    quiet = invoke(pg, "once", "--dry-run")
    assert quiet.exit_code == 0 and quiet.output.splitlines()[-1] == "nothing new to write"


def first_sync(pg: Playground, choice: str | None) -> dict:
    if choice is not None:
        pg.env["SYNCD_SYNC__EXISTING_LINKS"] = choice
    result = invoke(pg, "once", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("choice", [None, "announce"])
def test_links_found_on_the_first_sync_are_announced_by_default(pg, choice):
    first_sync(pg, choice)
    ticket = pg.seed.tickets["csv"]
    assert len(syncd_notes(pg, ticket)) == 1
    assert "syncd_linked" in pg.zendesk.ticket(ticket)["tags"]
    assert pg.linear.attachments  # the tickets are shown on their issues


def test_adopted_links_get_tag_and_status_field_but_no_note_and_later_changes_are_told(pg):
    report = first_sync(pg, "adopt")
    ticket, key = pg.seed.tickets["csv"], pg.seed.identifiers["csv"]
    shown = pg.zendesk.ticket(ticket)
    assert "syncd_linked" in shown["tags"]
    assert key in (pg.zendesk.field_value(ticket, pg.seed.linked_issue_status_field_id) or "")
    assert syncd_notes(pg, ticket) == []
    assert pg.linear.attachments == {}  # nothing written on the issues
    assert report["delivery"]["done"] == 8  # one write per ticket, for 8 links
    links = json.loads(invoke(pg, "links", "--json").output)
    assert len(links) == 8 and {row["origin"] for row in links} <= {"comment", "field", "tag", "text", "attachment"}

    # After the first sync nothing is "existing": a link made now, and an issue's move, are told.
    other, other_key = pg.seed.tickets["slack"], pg.seed.identifiers["webhook"]
    pg.agent_note(other, f"see {other_key}")
    pg.engineer_move(key, "Done")
    assert invoke(pg, "once").exit_code == 0
    assert any(n.startswith(f"Linked to {other_key}") for n in syncd_notes(pg, other))
    assert any("Done" in n for n in syncd_notes(pg, ticket))


def test_a_bad_choice_is_one_line_naming_the_key(pg):
    pg.env["SYNCD_SYNC__EXISTING_LINKS"] = "shout"
    result = invoke(pg, "once", "--dry-run")
    assert result.exit_code == 2
    assert result.output == (
        "syncd: environment SYNCD_SYNC__EXISTING_LINKS: must be 'announce' or 'adopt' (got \"shout\")\n"
    )


def test_a_dry_run_works_while_the_daemon_holds_the_store(pg):
    from syncd.store import Store

    assert invoke(pg, "once").exit_code == 0
    pg.agent_note(pg.seed.tickets["vat"], f"Same as {pg.seed.identifiers['csv']}")
    with Store(pg.store_path):  # the lock a running daemon holds
        result = invoke(pg, "once", "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["writes"] >= 1
        assert invoke(pg, "once").exit_code == 1  # a real run is refused, as before


def test_once_help_documents_the_dry_run_and_each_exit_status():
    text = CliRunner().invoke(main, ["once", "--help"]).output
    assert "--dry-run" in text and "--progress / --no-progress" in text
    for line in ("0  everything planned was delivered", "1  something failed", "3  nothing failed"):
        assert line in text
    assert "escalate" in CliRunner().invoke(main, ["--help"]).output
