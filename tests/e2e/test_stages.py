"""Follow-up stages end to end: a ticket walks New → Assigned → Waiting → Resolved → Follow-up
as people act in the sandbox, and the helpdesk shows each stage in a field and one tag."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

import pytest

from syncd.records import Ref, Stage
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e

PREFIX = "syncd_stage_"


class Clock:
    """The sandbox's and the engine's time: moved on by the test between acts.

    It starts at the suite's base instant (tests/conftest.py), never at the machine's time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


def mappings_dir(tmp_path, field_id: int):
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "routes.toml").write_text(
        textwrap.dedent("""
        [routes.product]
        tracker = "linear"
        team = "ENG"
        escalate = { tag = "escalated" }
        """)
    )
    (directory / "stages.toml").write_text(f'[stages]\nfield = {field_id}\ntag_prefix = "{PREFIX}"\n')
    return directory


@pytest.fixture
def clock(base_instant):
    return Clock(base_instant)


@pytest.fixture
def pg(tmp_path, clock):
    # The stage field is created in the sandbox before syncd's configuration is written.
    from syncd.sandbox.runner import build_sandbox

    sandbox = build_sandbox(clock=clock, trackers=("linear",))
    field = sandbox["zendesk"].add_ticket_field("Follow-up stage", "text")
    with Playground(
        tmp_path / "work", sandbox=sandbox, trackers=("linear",), mappings=mappings_dir(tmp_path, field["id"])
    ) as playground:
        playground.stage_field_id = field["id"]
        yield playground


def shown(pg: Playground, ticket: int) -> tuple[str | None, list[str]]:
    tags = [t for t in pg.zendesk.ticket(ticket)["tags"] if t.startswith(PREFIX)]
    return pg.zendesk.field_value(ticket, pg.stage_field_id), tags


def test_one_ticket_walks_every_stage_with_one_write_per_change(pg, clock):
    ticket = pg.seed.tickets["vat"]
    ref = Ref("zendesk", str(ticket))
    app = pg.app(clock=clock)
    try:
        assert app.engine.cycle().ok  # first sync
        assert shown(pg, ticket) == (None, [])  # not flagged, not linked: not a follow-up
        assert app.store.stage_history(ref) == []

        def act_and_cycle(act) -> tuple[int, int]:
            """The person acts, syncd runs a cycle: the ticket writes it queued and the Zendesk writes it sent."""
            clock.advance()
            act()
            clock.advance()
            queued = len(ticket_writes())
            pg.sandbox.reset_counts()
            report = app.engine.cycle()
            assert report.ok, report.summary()
            puts = sum(n for endpoint, n in pg.sandbox.counts()["zendesk"].items() if endpoint.startswith("PUT"))
            # The stage tag swap trusts the snapshot the poll stored after syncd's own last write: no read first.
            assert pg.sandbox.counts()["zendesk"].get("GET /api/v2/tickets/{id}", 0) == 0
            return len(ticket_writes()) - queued, puts

        def ticket_writes():
            return [
                r for r in app.store.list_outbox(limit=10_000) if r.target == str(ticket) and r.op == "ticket.update"
            ]

        def created() -> str:
            [row] = app.store.links_for_ticket(ref)
            return pg.linear.issue(row.issue.id)["identifier"]

        # Flagging escalates: syncd creates the issue (New, kept in the history only) and the
        # note of its link carries the next stage.
        steps = [
            (lambda: pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"]), Stage.ASSIGNED),
            (lambda: pg.engineer_move(created(), "In Progress"), Stage.WAITING),
            (lambda: pg.engineer_move(created(), "Done"), Stage.RESOLVED),
            (
                lambda: pg.agent_note(ticket, "Fixed in today's release, sorry for the trouble.", public=True),
                Stage.FOLLOW_UP,
            ),
        ]
        for act, stage in steps:
            # One write per change: the link and state notes carry the stage (the resolution's
            # note reopens nothing here: the ticket is open).
            assert act_and_cycle(act) == (1, 1), stage
            assert shown(pg, ticket) == (stage.value, [PREFIX + stage.value]), stage
            assert app.store.stage_history(ref)[-1][0] is stage

        history = app.store.stage_history(ref)
        walked = [Stage.NEW] + [s for _, s in steps]
        assert [s for s, _ in history] == walked
        assert [since for _, since in history] == sorted(since for _, since in history)
        events = [e for e in app.store.history(ref) if e.kind == "stage"]
        assert [e.detail["stage"] for e in events] == [s.value for s in walked]
        assert "Resolved → Follow-up" in events[-1].summary

        writes = ticket_writes()
        assert all(r.state == "done" for r in writes)
        # The link, the two moves and the resolution each wrote their note with the stage in it.
        noted = [r for r in writes if r.payload.get("note")]
        assert [r.payload["fields"][str(pg.stage_field_id)] for r in noted] == ["assigned", "waiting", "resolved"]
        merged = [e.detail.get("written_with") for e in events]
        assert merged[0] is None and merged[-1] is None and all(merged[1:4]), merged

        # Idle: the echoes of syncd's writes are read and nothing more is written.
        clock.advance()
        counts = app.store.outbox_counts()
        assert app.engine.cycle().ok
        clock.advance()
        report = app.engine.cycle()
        assert report.ok and report.delivery.done == 0
        assert app.store.outbox_counts() == counts
        assert app.store.stage_history(ref) == history
        assert shown(pg, ticket) == ("follow_up", [PREFIX + "follow_up"])

        # Solving keeps Follow-up (nothing written); the ticket coming back is rework: New again.
        assert act_and_cycle(lambda: pg.agent_set_status(ticket, "solved")) == (0, 0)
        assert act_and_cycle(lambda: pg.agent_set_status(ticket, "open")) == (1, 1)
        assert shown(pg, ticket) == ("new", [PREFIX + "new"])
        assert [s for s, _ in app.store.stage_history(ref)][-2:] == [Stage.FOLLOW_UP, Stage.NEW]
    finally:
        app.close()


@pytest.mark.parametrize("command", ["once", "run"])
def test_a_bad_mapping_directory_refuses_to_start(tmp_path, command):
    from click.testing import CliRunner

    from syncd.cli import main

    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "stages.toml").write_text('[stages]\ntag_prefix = "Stage "\n')
    (directory / "routes.toml").write_text('[routes.product]\ntracker = "nope"\nteam = "ENG"\n')
    with Playground(tmp_path / "work", trackers=("linear",), mappings=directory) as pg:
        result = CliRunner().invoke(main, [command], env=pg.cli_env())
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert lines == [
            f'syncd: {directory}/routes.toml:2: routes.product.tracker: no tracker named "nope" in syncd.toml '
            "(sync.trackers: linear); name one of them or add it to sync.trackers",
            f"syncd: {directory}/stages.toml:2: stages.tag_prefix: must be lower-case letters, digits, _, - or : "
            'without spaces (a helpdesk tag begins with it), e.g. "syncd_stage_"',
        ]
        assert not pg.store_path.exists()  # refused before the store was opened


def test_tickets_waiting_on_one_issue_get_the_stage_in_the_same_bulk_write(pg, clock):
    key = pg.seed.identifiers["search"]
    tickets = [pg.seed.tickets["vat"], pg.seed.tickets["archive"]]
    app = pg.app(clock=clock)
    try:
        assert app.engine.cycle().ok
        clock.advance()
        for ticket in tickets:
            pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"])
            pg.agent_note(ticket, f"see {key}")
        clock.advance()
        assert app.engine.cycle().ok
        assert [shown(pg, t) for t in tickets] == [("assigned", [PREFIX + "assigned"])] * 2

        clock.advance()
        pg.engineer_move(key, "In Progress")
        clock.advance()
        pg.sandbox.reset_counts()
        assert app.engine.cycle().ok
        puts = {e: n for e, n in pg.sandbox.counts()["zendesk"].items() if e.startswith("PUT")}
        assert puts == {"PUT /api/v2/tickets/update_many": 1}
        assert [shown(pg, t) for t in tickets] == [("waiting", [PREFIX + "waiting"])] * 2
    finally:
        app.close()


def test_sighup_with_a_bad_mapping_file_keeps_the_running_mappings(pg, clock):
    from syncd.app import build_app
    from syncd.daemon import Daemon

    daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None, clock=clock), sleep=lambda _: None)
    try:
        daemon.step()
        running = daemon.app
        routes = pg.settings().mappings_path / "routes.toml"
        routes.write_text(routes.read_text().replace('tracker = "linear"', 'tracker = "nowhere"'))
        daemon.reload_requested = True
        daemon._reload()
        assert daemon.app is running, "a bad mapping file must not replace the running app"
        assert daemon.app.engine.mappings is not None
        ticket = pg.seed.tickets["vat"]
        pg.agent_note(ticket, f"see {pg.seed.identifiers['csv']}")
        clock.advance()
        assert daemon.app.engine.cycle().ok  # still working on the old mappings, on an open store
        assert any("syncd:" in c["body"] for c in pg.zendesk.ticket_comments(ticket))
    finally:
        daemon.app.close()
