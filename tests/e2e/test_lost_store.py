"""A lost, rebuilt or restored store repeats nothing and forgets nothing (issue 9, item 5).

End to end through the sandbox and the ``syncd`` command: links made by a
pasted key (Linear, GitHub, Jira), by the "Linked issue" field and by
``syncd link`` (all three trackers); then the store is deleted, or an older
copy of it is restored, and syncd runs again. What syncd wrote is still in
the services with its markers: nothing may be written a second time, and
``syncd links`` must list every link again.
"""

from __future__ import annotations

import collections
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.base import find_markers
from syncd.cli import main
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


def syncd(pg: Playground, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=pg.cli_env())
    assert result.exit_code == 0, result.output
    return result.output


def written(pg: Playground) -> dict[str, int]:
    """How many things every place holds that syncd writes to."""
    counts = {f"zendesk #{tid} comments": len(pg.zendesk.ticket_comments(tid)) for tid in pg.zendesk.tickets}
    counts["linear comments"] = len(pg.linear.comments)
    counts["linear attachments"] = len(pg.linear.attachments)
    if pg.github is not None:
        counts["github comments"] = len(pg.github.comments_by_id)
    if pg.jira is not None:
        counts["jira comments"] = sum(len(i.comments) for i in pg.jira.issues.values())
        counts["jira remote links"] = sum(len(i.remotelinks) for i in pg.jira.issues.values())
    return counts


def repeated_markers(pg: Playground) -> dict[int, list[str]]:
    """Markers found on more than one note of a ticket (a write made twice)."""
    out = {}
    for tid in pg.zendesk.tickets:
        seen = collections.Counter(m for c in pg.zendesk.ticket_comments(tid) for m in find_markers(c["body"]))
        if any(n > 1 for n in seen.values()):
            out[tid] = [m for m, n in seen.items() if n > 1]
    return out


def listed_links(pg: Playground) -> set[tuple[str, str]]:
    return {(row["ticket"], row["issue"]) for row in json.loads(syncd(pg, "links", "--json"))}


def set_linked_issue_field(pg: Playground, ticket_id: int, value: str) -> None:
    pg.desk._put_ticket(
        ticket_id, {"custom_fields": [{"id": pg.seed.linked_issue_field_id, "value": value}]}, "Priya Raman"
    )


def jira_key(pg: Playground, n: int) -> str:
    return list(pg.seed.keys("jira").values())[n]


def first_part(pg: Playground) -> None:
    """First sync (the seeded "Linked issue" fields), then links of every kind on every tracker."""
    s = pg.seed
    syncd(pg, "once")
    pg.agent_note(s.tickets["csv"], f"Engineering tracks this as {s.identifiers['csv']}")
    pg.agent_note(s.tickets["2fa"], f"Same SDK bug as {s.keys('github')['totp']}")
    pg.agent_note(s.tickets["retention"], f"Platform has it: {jira_key(pg, 0)}")
    set_linked_issue_field(pg, s.tickets["api-429"], jira_key(pg, 2))
    syncd(pg, "once")
    syncd(pg, "link", str(s.tickets["invite"]), s.identifiers["safari"])
    syncd(pg, "link", str(s.tickets["gdpr"]), s.keys("github")["offline"])
    syncd(pg, "link", str(s.tickets["slack"]), jira_key(pg, 1))
    syncd(pg, "once")


def second_part(pg: Playground) -> None:
    """Later: issues move (notes on the linked tickets), and more links by key and by hand."""
    s = pg.seed
    pg.engineer_move(s.identifiers["csv"], "In Progress")
    pg.world("github").close("totp")
    pg.world("jira").move(jira_key(pg, 0), "In Progress")
    pg.world("jira").move(jira_key(pg, 1), "Done", resolution="Done")
    pg.agent_note(s.tickets["search"], f"Known: {s.identifiers['search']}")
    syncd(pg, "once")
    syncd(pg, "link", str(s.tickets["reset"]), s.keys("github")["push"])
    syncd(pg, "link", str(s.tickets["duplicate-email"]), jira_key(pg, 3))
    syncd(pg, "once")


def remove_store(pg: Playground) -> None:
    for path in [pg.store_path, *(Path(f"{pg.store_path}{x}") for x in ("-wal", "-shm", ".lock"))]:
        path.unlink(missing_ok=True)


def assert_converged(pg: Playground, before: dict[str, int], links: set[tuple[str, str]]) -> None:
    for _ in range(2):
        syncd(pg, "once")
    after = written(pg)
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {}
    assert repeated_markers(pg) == {}
    assert listed_links(pg) == links


def test_a_deleted_store_writes_nothing_twice_and_lists_every_link(pg):
    first_part(pg)
    second_part(pg)
    before, links = written(pg), listed_links(pg)
    assert len(links) >= 12 and repeated_markers(pg) == {}

    remove_store(pg)
    assert_converged(pg, before, links)


def test_a_restored_older_backup_writes_nothing_twice_and_lists_every_link(pg, tmp_path):
    first_part(pg)
    copy = tmp_path / "backup.db"
    with sqlite3.connect(pg.store_path) as source, sqlite3.connect(copy) as target:
        source.backup(target)  # SQLite's online backup, as `syncd store backup` takes it
    second_part(pg)
    before, links = written(pg), listed_links(pg)

    remove_store(pg)
    copy.rename(pg.store_path)
    assert_converged(pg, before, links)


def test_an_ended_link_is_not_taken_up_again_after_the_store_is_lost(pg):
    s = pg.seed
    syncd(pg, "once")
    syncd(pg, "link", str(s.tickets["invite"]), s.identifiers["safari"])
    syncd(pg, "unlink", str(s.tickets["invite"]), s.identifiers["safari"])
    syncd(pg, "once")
    links = listed_links(pg)
    assert (f"#{s.tickets['invite']}", s.identifiers["safari"]) not in links
    before = written(pg)

    remove_store(pg)
    assert_converged(pg, before, links)


def test_a_restored_backup_checks_replayed_notes_when_the_helpdesk_feed_fails(pg, tmp_path):
    """The first cycle after a restore reads the trackers' feeds but not the helpdesk's:
    the notes the replay plans are looked for on their tickets before they are sent."""
    first_part(pg)
    copy = tmp_path / "backup.db"
    with sqlite3.connect(pg.store_path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    second_part(pg)
    before, links = written(pg), listed_links(pg)

    remove_store(pg)
    copy.rename(pg.store_path)
    rule = pg.zendesk.inject("500", r"GET /api/v2/incremental/tickets/cursor")
    result = CliRunner().invoke(main, ["once"], env=pg.cli_env())
    assert result.exit_code != 0 and rule.fired  # the helpdesk's feed failed; the trackers' were read
    assert repeated_markers(pg) == {}
    pg.zendesk.clear_faults()
    assert_converged(pg, before, links)


def test_the_handoff_repeats_no_note_after_the_store_is_lost(tmp_path):
    """With the handoff on (the example mappings): an escalation created its issue, flagged
    tickets got their needs-context note (its key folds in when the stage began, which the
    lost store does not know), an issue resolved. After the store is lost nothing is repeated:
    no second note, no second issue."""
    from tests.e2e.handoff_support import MondayClock, handoff_playground
    from tests.e2e.test_escalation import new_ticket

    clock = MondayClock()
    with handoff_playground(tmp_path, clock) as pg:
        app = pg.app(clock=clock)

        def cycle(n: int = 1) -> None:
            for _ in range(n):
                clock.advance()
                assert app.engine.cycle().ok

        try:
            cycle()
            ticket = new_ticket(
                pg, "Route planner drops the last stop", "More than 20 stops: the last is missing.", severity="sev2"
            )
            pg.agent_note(
                ticket,
                "Steps: plan a route with 21 stops.\nExpected: all 21 stops are shown.\n"
                "Impact: every dispatcher is affected.",
            )
            pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"])
            cycle(2)
            other = new_ticket(pg, "Monthly export times out", "The CSV export fails.", severity="sev3")
            pg.agent_note(other, f"Known problem: {pg.seed.identifiers['csv']}")
            cycle()
            pg.engineer_move(pg.seed.identifiers["csv"], "Done")
            cycle(2)
            before = written(pg) | {"linear issues": len(pg.linear.issues)}
            links = {(r.ticket.id, r.issue.id) for r in app.store.all_links()}
            assert any(r.origin == "escalation" for r in app.store.all_links())
        finally:
            app.close()

        remove_store(pg)
        app = pg.app(clock=clock)
        try:
            cycle(3)
            after = written(pg) | {"linear issues": len(pg.linear.issues)}
            assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {}
            assert repeated_markers(pg) == {}
            assert {(r.ticket.id, r.issue.id) for r in app.store.all_links()} == links
        finally:
            app.close()
