"""End to end through the sandbox: real HTTP, real store, the engine's cycles."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connectors.base import find_markers
from syncd.cli import main
from syncd.records import Ref
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


@pytest.fixture
def app(pg):
    app = pg.app()
    app.engine.cycle()  # first sync: seeded field links, backfill
    yield app
    app.close()


def syncd_notes(pg: Playground, ticket_id: int) -> list[dict]:
    return [c for c in pg.zendesk.ticket_comments(ticket_id) if find_markers(c["body"])]


def status_field(pg: Playground, ticket_id: int):
    return pg.zendesk.field_value(ticket_id, pg.seed.linked_issue_status_field_id)


def test_pasted_url_links_and_notes_the_ticket_and_shows_it_on_the_issue(pg, app):
    ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
    pg.agent_note(ticket, f"Tracked in https://linear.app/sandbox/issue/{key}/search-lags please")
    report = app.engine.cycle()
    assert report.ok
    (note,) = syncd_notes(pg, ticket)
    assert note["public"] is False
    assert f"Linked to {key}" in note["body"] and "Triage" in note["body"]
    assert "syncd_linked" in pg.zendesk.ticket(ticket)["tags"]
    assert status_field(pg, ticket) == f"{key}: Triage"
    attachments = pg.linear.issue(key)["attachments"]
    assert [a["url"] for a in attachments] == [pg.zendesk.agent_url(ticket)]
    assert "Fjord Analytics" in attachments[0]["subtitle"]
    links = app.store.links_for_ticket(Ref("zendesk", str(ticket)))
    assert [(r.issue.id, r.origin) for r in links] == [(pg.seed.issues["search"], "comment")]


def test_state_change_notes_and_updates_the_field_then_completion_reopens(pg, app):
    ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
    pg.agent_note(ticket, f"see {key}")
    app.engine.cycle()
    pg.engineer_move(key, "In Progress")
    app.engine.cycle()
    notes = syncd_notes(pg, ticket)
    assert len(notes) == 2 and "moved from Triage to In Progress" in notes[-1]["body"]
    assert status_field(pg, ticket) == f"{key}: In Progress"

    pg.agent_set_status(ticket, "pending")
    pg.engineer_move(key, "Done")
    app.engine.cycle()
    t = pg.zendesk.ticket(ticket)
    assert t["status"] == "open"
    assert "follow up with the customer" in syncd_notes(pg, ticket)[-1]["body"]
    assert status_field(pg, ticket) == f"{key}: Done"


def test_second_run_does_nothing_new(pg, app):
    ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
    pg.agent_note(ticket, f"see {key}")
    pg.engineer_move(key, "In Progress")
    app.engine.cycle()
    app.engine.cycle()  # sees the echoes of its own writes
    comments = len(pg.zendesk.ticket_comments(ticket))
    outbox = app.store.outbox_counts()
    pg.sandbox.reset_counts()
    for _ in range(3):
        report = app.engine.cycle()
        assert report.delivery.done == 0
    assert len(pg.zendesk.ticket_comments(ticket)) == comments
    assert app.store.outbox_counts() == outbox
    # An idle cycle costs one request per feed.
    counts = pg.sandbox.counts()
    assert counts["zendesk"] == {"GET /api/v2/incremental/tickets/cursor": 3}
    assert counts["linear"] == {"POST /graphql SyncdIssues": 3}


def test_a_person_attaching_the_ticket_on_the_issue_links_it(pg, app):
    ticket, key = pg.seed.tickets["vat"], pg.seed.identifiers["webhook"]
    pg.linear.add_attachment(key, pg.zendesk.agent_url(ticket), "Customer ticket")
    app.engine.cycle()
    links = app.store.links_for_ticket(Ref("zendesk", str(ticket)))
    assert [r.origin for r in links] == ["attachment"]
    assert f"Linked to {key}" in syncd_notes(pg, ticket)[0]["body"]


def test_link_follows_an_identifier_change(pg, app):
    ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
    pg.agent_note(ticket, f"see {key}")
    app.engine.cycle()
    pg.linear.move_team(key, "APP")
    new_key = pg.linear.issue(pg.seed.issues["search"])["identifier"]
    assert new_key.startswith("APP-")
    app.engine.cycle()
    links = app.store.links_for_ticket(Ref("zendesk", str(ticket)))
    assert [r.issue.id for r in links] == [pg.seed.issues["search"]]
    assert status_field(pg, ticket).startswith(f"{new_key}: ")
    pg.engineer_move(new_key, "In Progress")
    app.engine.cycle()
    assert f"{new_key} moved from" in syncd_notes(pg, ticket)[-1]["body"]


def test_one_issue_many_tickets_is_one_bulk_update(pg, app):
    key = pg.seed.identifiers["csv"]
    for name in ("vat", "slack", "invite"):
        pg.agent_note(pg.seed.tickets[name], f"same root cause as {key}")
    app.engine.cycle()
    pg.sandbox.reset_counts()
    pg.engineer_move(key, "In Progress")
    app.engine.cycle()
    counts = pg.sandbox.counts()["zendesk"]
    assert counts.get("PUT /api/v2/tickets/update_many") == 1
    assert "PUT /api/v2/tickets/{id}" not in counts
    for name in ("vat", "slack", "invite", "csv"):
        assert "moved from Todo to In Progress" in syncd_notes(pg, pg.seed.tickets[name])[-1]["body"]


def test_syncd_link_and_unlink_commands(pg, app):
    app.close()
    runner = CliRunner()
    env = {**pg.env, "SYNCD_CONFIG": str(pg.config_path)}
    ticket, key = pg.seed.tickets["2fa"], pg.seed.identifiers["safari"]
    result = runner.invoke(main, ["link", str(ticket), key], env=env)
    assert result.exit_code == 0, result.output
    assert f"linked #{ticket}" in result.output and "delivered 2 write(s)" in result.output
    assert "syncd_linked" in pg.zendesk.ticket(ticket)["tags"]
    again = runner.invoke(main, ["link", str(ticket), key], env=env)
    assert again.exit_code == 0 and "already linked" in again.output

    listed = runner.invoke(main, ["links", "--ticket", str(ticket)], env=env)
    assert key in listed.output and "syncd link" in listed.output  # how it was linked, in words
    history = runner.invoke(main, ["history", str(ticket)], env=env)
    assert "linked" in history.output and "delivered" in history.output

    result = runner.invoke(main, ["unlink", str(ticket), key], env=env)
    assert result.exit_code == 0, result.output
    assert "syncd_linked" not in pg.zendesk.ticket(ticket)["tags"]
    assert "Unlinked from" in syncd_notes(pg, ticket)[-1]["body"]
    missing = runner.invoke(main, ["unlink", str(ticket), key], env=env)
    assert missing.exit_code == 1 and "is not linked" in missing.output


def test_bad_ticket_argument_is_a_usage_error(pg, app):
    result = CliRunner().invoke(main, ["link", "abc", "ENG-1"], env={**pg.env, "SYNCD_CONFIG": str(pg.config_path)})
    assert result.exit_code == 2 and "not a ticket id" in result.output


def test_issue_key_nobody_knows_is_recorded_not_fatal(pg, app):
    ticket = pg.seed.tickets["vat"]
    pg.agent_note(ticket, "maybe related to ENG-999?")
    report = app.engine.cycle()
    assert report.ok
    assert app.store.links_for_ticket(Ref("zendesk", str(ticket))) == []
    assert any(e.kind == "unresolved" for e in app.store.history(Ref("zendesk", str(ticket))))
