"""The handoff end to end with Intercom as the helpdesk: the Intercom and Linear fakes over
real HTTP, a real store, the engine's cycles, the configuration an admin writes.

This world is a small one built from the fakes' own seed methods
(``IntercomFake.seed_handoff_world``: two tickets, two issues); the story's
world with Intercom (IntercomWorld) is in test_intercom_playground.py. Nothing
in syncd's engine or mapping layer knows it is Intercom."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import find_markers
from connectors.intercom.fake import IntercomFake, text_of
from connectors.linear.fake import SANDBOX_TEAMS, LinearFake
from syncd.app import build_app
from syncd.config import load_config
from syncd.demo import fit_example_fields
from syncd.records import PromiseState, Ref
from syncd.sandbox.seed import SeedResult
from syncd.sandbox.server import Sandbox
from tests.e2e.handoff_support import MondayClock, copy_examples

pytestmark = pytest.mark.e2e

STATUS, STAGE, LINK = "Linked issue status", "Follow-up stage", "Linked issue"
SEVERITY, MISSING = "Severity", "Handoff: still missing"


class World:
    """Intercom and Linear fakes, seeded, served, and a syncd.toml pointing at them."""

    def __init__(self, tmp_path: Path, clock: MondayClock, *, examples: bool = False):
        self.clock = clock
        self.intercom = IntercomFake(clock=clock, seed=7)
        self.linear = LinearFake(clock=clock, seed=7)
        for key, name in zip(SANDBOX_TEAMS, ("Engineering", "Apps")):
            self.linear.add_team(key, name)
        self.ada = self.linear.add_user("Ada Novak", "ada@product.sandbox.example")
        team = SANDBOX_TEAMS[0]
        self.issues = {
            "sso": self.linear.create_issue(team, "SSO redirect loop", assignee=self.ada["id"]),
            "csv": self.linear.create_issue(team, "CSV export drops rows"),
        }
        self.keys = {short: self.linear.issue(issue["id"])["identifier"] for short, issue in self.issues.items()}
        self.seed = self.intercom.seed_handoff_world(self.keys)
        self.sandbox = Sandbox([self.intercom, self.linear]).start()
        if examples:
            # The shipped example set, its sandbox field ids replaced by attribute names, as an
            # Intercom admin adapts it; the ticket type gets those attributes.
            mappings = copy_examples(tmp_path)
            fields = SeedResult(severity_field_id=SEVERITY, stage_field_id=STAGE, missing_field_id=MISSING)
            assert fit_example_fields(mappings, fields)
            for name in (SEVERITY, MISSING):
                self.intercom.add_ticket_attribute(self.intercom.default_type["id"], name)
        else:
            mappings = tmp_path / "mappings"
            mappings.mkdir()
            (mappings / "stages.toml").write_text(f'[stages]\nfield = "{STAGE}"\ntag_prefix = "syncd_stage_"\n')
        self.config = tmp_path / "syncd.toml"
        linear_lines = "\n".join([*self.linear.connector_config(), *self.linear.playground_config()])
        self.config.write_text(
            f"""\
[store]
path = "syncd.db"

[daemon]
poll_interval = 1
jitter = 0
health_address = ""

[log]
level = "warning"

[sync]
helpdesk = "intercom"
trackers = ["linear"]
mappings = {json.dumps(str(mappings))}

[connectors.intercom]
kind = "intercom"
url = "{self.intercom.base_url}"
{chr(10).join(self.intercom.connector_config() + self.intercom.playground_config())}
max_wait = 2

[connectors.linear]
kind = "linear"
url = "{self.linear.base_url}"
{linear_lines}
max_wait = 2
"""
        )
        self.env = {
            f"SYNCD_CONNECTORS__{name.upper()}__{field.upper()}": value
            for name, fake in (("intercom", self.intercom), ("linear", self.linear))
            for field, value in fake.secrets.items()
        }

    def app(self):
        return build_app(load_config(self.config, env=self.env), sleep=lambda s: None, clock=self.clock)

    def syncd_notes(self, ticket: str) -> list[str]:
        return [text_of(p["body"]) for p in self.intercom.notes(ticket) if find_markers(p["body"])]

    def close(self) -> None:
        self.sandbox.stop()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path, MondayClock())
    yield w
    w.close()


def test_the_handoff_runs_unchanged_with_intercom_as_the_helpdesk(world):
    tickets = world.seed["tickets"]
    app = world.app()
    try:
        assert app.engine.cycle().ok  # first sync: each ticket names an issue in its description
        for short, ticket in tickets.items():
            key = world.keys[short]
            (note,) = world.syncd_notes(ticket)
            assert f"Linked to {key}" in note
            assert "syncd_linked" in world.intercom.tag_names(ticket)
            assert world.intercom.attribute(ticket, STATUS).startswith(f"{key}: ")
            assert world.intercom.attribute(ticket, STAGE)  # the stage is shown in place, in its attribute
            attachments = world.linear.issue(key)["attachments"]
            assert [a["url"] for a in attachments] == [world.intercom.inbox_url(ticket)]
            links = app.store.links_for_ticket(Ref("intercom", ticket))
            assert [r.issue.id for r in links] == [world.issues[short]["id"]]

        # The next cycle reads the echo of syncd's own writes (a changed ticket is read once);
        # after it, an idle cycle costs one search request to Intercom.
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        world.clock.advance(minutes=1)
        world.intercom.reset_counts()
        assert app.engine.cycle().ok
        assert dict(world.intercom.counts) == {"POST /tickets/search": 1}

        # The engineer finishes; the ticket, waiting on the customer, is reopened with a note.
        ticket, key = tickets["sso"], world.keys["sso"]
        world.intercom.set_state(ticket, "waiting_on_customer")
        world.clock.advance(minutes=1)
        world.linear.move_to_state(key, "Done")
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        record = world.intercom.record(ticket)
        state = world.intercom.ticket_states[record["ticket"]["state_id"]]["category"]
        assert record["open"] and state == "in_progress"
        assert world.intercom.attribute(ticket, STATUS) == f"{key}: Done (Ada Novak)"
        assert "follow up with the customer" in world.syncd_notes(ticket)[-1]

        # A note an agent writes links a further issue; the echo of syncd's own writes adds nothing.
        other = world.keys["csv"]
        world.intercom.admin_note(ticket, f"<p>Also {other}</p>", admin_id=world.seed["agents"]["Priya Raman"])
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        assert any(f"Linked to {other}" in n for n in world.syncd_notes(ticket))
        notes = len(world.syncd_notes(ticket))
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        assert len(world.syncd_notes(ticket)) == notes
    finally:
        app.close()


def test_a_note_whose_answer_was_lost_is_found_by_its_marker_and_not_sent_twice(world):
    """The note lands but its answer never comes back (the connection drops): the next
    cycle finds the note's marker on the ticket and sends nothing again."""
    ticket = world.seed["tickets"]["sso"]
    lost = world.intercom.inject("timeout", r"POST /tickets/\{id\}/reply", count=1, delay=0.05)
    app = world.app()
    try:
        app.engine.cycle()
        assert lost.fired == 1
        assert len(world.syncd_notes(ticket)) + len(world.syncd_notes(world.seed["tickets"]["csv"])) == 2
        for _ in range(2):
            world.clock.advance(minutes=1)
            assert app.engine.cycle().ok
    finally:
        app.close()
    for short, ticket in world.seed["tickets"].items():
        notes = world.syncd_notes(ticket)
        assert len(notes) == 1 and f"Linked to {world.keys[short]}" in notes[0]


@pytest.fixture
def handoff(tmp_path):
    w = World(tmp_path, MondayClock(), examples=True)
    yield w
    w.close()


def cycle(world: World, app) -> None:
    world.clock.advance(minutes=1)
    report = app.engine.cycle()
    assert report.ok, report.summary()


def test_escalation_needs_context_then_one_issue_with_promises_and_demand(handoff):
    world = handoff
    app = world.app()
    try:
        cycle(world, app)  # the first sync of the seeded desk
        hannah = world.seed["contacts"]["hannah@northwind.example"]
        priya = world.seed["agents"]["Priya Raman"]
        subject = "Route planner drops the last stop"
        ticket = world.intercom.create_ticket(
            subject,
            "<p>When a route has more than 20 stops the last one is missing.</p>",
            contact_id=hannah,
            state="in_progress",
            admin_assignee_id=priya,
        )["id"]
        ref = Ref("intercom", ticket)
        cycle(world, app)
        assert app.store.stage_history(ref) == []

        # Flagged without severity, steps, expected behaviour or impact: Needs context, one note.
        world.intercom.add_tag(ticket, "escalated")
        cycle(world, app)
        assert world.intercom.attribute(ticket, STAGE) == "needs_context"
        assert "syncd_stage_needs_context" in world.intercom.tag_names(ticket)
        [note] = [n for n in world.syncd_notes(ticket) if "please add" in n]
        for label in ("severity (the Severity field)", "steps to reproduce", "expected behaviour", "customer impact"):
            assert label in note
        assert "the customer's organisation" not in note  # the contact's company is known
        missing = world.intercom.attribute(ticket, MISSING)
        assert missing.count("- ") == 4 and "&#" not in missing  # plain words in an attribute

        # The agent completes it: severity in its attribute, the rest in a note. One issue, linked.
        world.intercom.set_attribute(ticket, SEVERITY, "sev2")
        world.intercom.admin_note(
            ticket,
            "<p>Steps: plan a route with 21 stops.</p><p>Expected: all 21 stops are shown.</p>"
            "<p>Impact: every dispatcher at Northwind is affected.</p>",
            admin_id=priya,
        )
        cycle(world, app)
        [issue] = [i for i in world.linear.issues.values() if i["title"] == subject]
        assert world.intercom.attribute(ticket, STAGE) == "assigned"
        assert world.intercom.attribute(ticket, MISSING) in ("", None)
        body = issue["description"]
        assert world.intercom.inbox_url(ticket) in body and "Northwind" in body and "sev2" in body
        assert "every dispatcher at Northwind" in body
        links = app.store.links_for_ticket(ref)
        assert [(r.issue.id, r.origin) for r in links] == [(issue["id"], "escalation")]
        promises = app.store.promises_for_ticket(ref)
        assert sorted(p.what for p in promises) == [
            "an update within 2 business days",
            "news when the linked work ships",
        ]

        # A second ticket about the same problem links by key: demand on the issue, two tickets.
        key = world.linear.issue(issue["id"])["identifier"]
        other = world.intercom.create_ticket(
            "Last stop missing",
            f"<p>Same as {key}</p>",
            contact_id=hannah,
            state="in_progress",
            admin_assignee_id=priya,
        )["id"]
        cycle(world, app)
        cycle(world, app)
        assert [r.issue.id for r in app.store.links_for_ticket(Ref("intercom", other))] == [issue["id"]]
        demand = [c for c in world.linear.issue(issue["id"])["comments"] if "Support demand" in c["body"]]
        assert len(demand) == 1 and "2 ticket(s)" in demand[0]["body"]
    finally:
        app.close()

    # The review reads the store: the escalated ticket's rejection is in it, by its Intercom key.
    result = run_cli(world, "report", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "#" + world.intercom.record(ticket)["ticket"]["ticket_id"] in json.dumps(report)


def run_cli(world: World, *args: str, **env: str):
    from click.testing import CliRunner

    from syncd.cli import main

    environment = {**world.env, "SYNCD_CONFIG": str(world.config), **env}
    return CliRunner().invoke(main, list(args), env=environment)


def check(world: World, **env: str):
    return run_cli(world, "check", **env)


def test_syncd_check_checks_the_named_attributes(world):
    result = check(world)
    assert result.exit_code == 0, result.output
    assert "intercom (intercom): ok, syncd (API)" in result.output

    text = world.config.read_text(encoding="utf-8").replace(f'stage_attribute = "{STAGE}"', 'stage_attribute = "Stage"')
    world.config.write_text(text, encoding="utf-8")
    result = check(world)
    assert result.exit_code == 1
    assert (
        "intercom (intercom): FAILED: connector intercom: stage_attribute 'Stage' is not an attribute "
        "of any ticket type" in result.output
    )
    assert "linear (linear): ok" in result.output


def handed_over(world: World, app) -> str:
    """A new ticket about the CSV export, linked by the agent in a note: the handoff makes promises."""
    priya = world.seed["agents"]["Priya Raman"]
    ticket = world.intercom.create_ticket(
        "Monthly export times out",
        "<p>The full-month CSV export fails after 30 seconds.</p>",
        contact_id=world.seed["contacts"]["hannah@northwind.example"],
        attributes={SEVERITY: "sev3"},
        state="in_progress",
        admin_assignee_id=priya,
    )["id"]
    world.intercom.admin_note(ticket, f"<p>Known problem: {world.keys['csv']}</p>", admin_id=priya)
    cycle(world, app)
    return ticket


def test_a_promise_falls_due_when_the_work_ships_and_is_kept_by_a_public_reply(handoff):
    world = handoff
    app = world.app()
    try:
        cycle(world, app)
        ticket = handed_over(world, app)
        ref = Ref("intercom", ticket)
        assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.OPEN}
        world.intercom.set_state(ticket, "waiting_on_customer")
        cycle(world, app)

        world.linear.move_to_state(world.keys["csv"], "Done")
        cycle(world, app)
        assert world.intercom.attribute(ticket, STAGE) == "resolved"
        due = [p for p in app.store.promises_for_ticket(ref) if p.state is PromiseState.DUE]
        assert sorted(p.what for p in due) == ["an update within 2 business days", "news when the linked work ships"]
        [note] = [n for n in world.syncd_notes(ticket) if "We promised the customer" in n]
        assert "news when the linked work ships" in note
        record = world.intercom.record(ticket)
        assert record["open"] and world.intercom.ticket_states[record["ticket"]["state_id"]]["category"] == (
            "in_progress"
        )

        world.intercom.admin_reply(
            ticket, "<p>Good news: the export fix is live.</p>", admin_id=world.seed["agents"]["Priya Raman"]
        )
        cycle(world, app)
        assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.KEPT}
        assert world.intercom.attribute(ticket, STAGE) == "follow_up"
    finally:
        app.close()


def test_a_promise_broken_by_the_clock_adds_a_note_and_a_tag_once(handoff):
    world = handoff
    app = world.app()
    try:
        cycle(world, app)
        ticket = handed_over(world, app)
        ref = Ref("intercom", ticket)
        [update] = [p for p in app.store.promises_for_ticket(ref) if p.due_at is not None]
        world.clock.now = update.due_at + timedelta(minutes=1)  # the clock jumps past the deadline
        cycle(world, app)
        assert app.store.get_promise(update.id).state is PromiseState.BROKEN
        assert "syncd_promise_broken" in world.intercom.tag_names(ticket)
        overdue = [n for n in world.syncd_notes(ticket) if "Overdue: the customer was promised" in n]
        assert len(overdue) == 1
        cycle(world, app)
        assert len([n for n in world.syncd_notes(ticket) if "Overdue" in n]) == 1
    finally:
        app.close()


def test_an_issue_key_an_agent_puts_in_the_link_attribute_links_the_ticket(world):
    app = world.app()
    try:
        assert app.engine.cycle().ok
        ticket = world.intercom.create_ticket(
            "Export question",
            "<p>How do I export everything?</p>",
            contact_id=world.seed["contacts"]["chloe@bluebird.example"],
            state="in_progress",
        )["id"]
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        assert app.store.links_for_ticket(Ref("intercom", ticket)) == []
        world.intercom.set_attribute(ticket, LINK, world.keys["csv"])
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        links = app.store.links_for_ticket(Ref("intercom", ticket))
        assert [(r.issue.id, r.origin) for r in links] == [(world.issues["csv"]["id"], "field")]
    finally:
        app.close()


def test_the_conversation_crosses_with_intercom_as_the_helpdesk(world, tmp_path):
    """The conversation mirror through the Helpdesk contract alone: Intercom notes and Linear comments."""
    (tmp_path / "mappings" / "routes.toml").write_text(
        '[routes.all]\ntracker = "linear"\nteam = "ENG"\n\n'
        '[routes.all.conversation]\ndirection = "both"\nprefix = "#eng"\n'
    )
    ticket, key = world.seed["tickets"]["sso"], world.keys["sso"]
    app = world.app()
    try:
        assert app.engine.cycle().ok  # first sync: linked, and the rule is switched on now
        world.clock.advance(minutes=1)
        comment = world.linear.add_comment(world.issues["sso"], "Fixed in 4.2, re-run with --chunked", user=world.ada)
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        mirrored = [n for n in world.syncd_notes(ticket) if "Fixed in 4" in n]
        assert len(mirrored) == 1 and mirrored[0].startswith(f"Ada Novak on {key}:")

        world.linear.edit_comment(comment["id"], "Fixed in 4.3")
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        assert [n for n in world.syncd_notes(ticket) if "Fixed in 4" in n][1].startswith(
            f"Ada Novak edited their comment on {key}:"
        )

        world.intercom.admin_note(ticket, "<p>#eng Only on Safari 17</p>", admin_id=world.seed["agents"]["Priya Raman"])
        world.clock.advance(minutes=1)
        assert app.engine.cycle().ok
        bodies = [c["body"] for c in world.linear.comments.values() if c["issueId"] == world.issues["sso"]["id"]]
        crossed = [b for b in bodies if "Only on Safari 17" in b]
        assert len(crossed) == 1 and "Priya Raman on Intercom ticket" in crossed[0]

        counts = (len(world.intercom.notes(ticket)), len(bodies))
        for _ in range(5):
            world.clock.advance(minutes=1)
            assert app.engine.cycle().ok
        bodies = [c["body"] for c in world.linear.comments.values() if c["issueId"] == world.issues["sso"]["id"]]
        assert (len(world.intercom.notes(ticket)), len(bodies)) == counts
    finally:
        app.close()
