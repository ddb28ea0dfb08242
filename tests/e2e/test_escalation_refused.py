"""A handoff the tracker refuses is visible and can be redone, end to end through the sandbox.

The admin's route sends escalations to a Linear team that does not exist:
the create is refused for good (not retried eight times), the agent gets an
internal note saying so in plain words, and the stage field and tag show
``handoff_failed``. After the admin fixes the route, ``syncd escalate``
(or retrying the dead create) plans the handoff again against the mappings
as they are now: the issue is created in the fixed team, never in the old one.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.errors import SyncdError
from syncd.records import Ref, Stage
from syncd.sandbox.harness import Playground
from tests.e2e.handoff_support import MondayClock, copy_examples, handoff_playground

pytestmark = pytest.mark.e2e

PREFIX = "syncd_stage_"
SUBJECT = "Route planner drops the last stop"


def set_team(mappings, team: str) -> None:
    routes = mappings / "routes.toml"
    text = routes.read_text()
    start = text.index("[routes.product]")
    head, tail = text[:start], text[start:]
    current = tail.split('team = "', 1)[1].split('"', 1)[0]
    routes.write_text(head + tail.replace(f'team = "{current}"', f'team = "{team}"', 1))


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    mappings = copy_examples(tmp_path)
    set_team(mappings, "NOPE")  # a typo'd team key: Linear has no such team
    with handoff_playground(tmp_path, clock, mappings) as playground:
        playground.mappings_dir = mappings
        yield playground


def complete_escalation(pg: Playground) -> int:
    """A flagged ticket with everything the acceptance criteria ask for: it is handed over at once."""
    zendesk = pg.zendesk
    customer = next(u for u in zendesk.users.values() if u.get("organization_id") and u["role"] == "end-user")
    agent = next(u for u in zendesk.users.values() if u["name"] == "Priya Raman")
    ticket = zendesk.create_ticket(
        SUBJECT,
        "When a route has more than 20 stops the last one is missing.",
        requester_id=customer["id"],
        status="open",
        tags=["escalated"],
        custom_fields={pg.seed.severity_field_id: "sev2"},
        assignee_id=agent["id"],
        organization_id=customer["organization_id"],
    )["id"]
    pg.agent_note(
        ticket,
        "Steps: plan a route with 21 stops, open it in the driver app.\nExpected: all 21 stops are shown.\n"
        "Impact: every dispatcher at Northwind with long routes is affected.",
    )
    return ticket


def cycle(app, clock) -> None:
    clock.advance()
    report = app.engine.cycle()
    assert not any(p.error for p in report.polls), report.summary()


def failure_notes(pg: Playground, ticket: int) -> list[str]:
    return [
        c["body"]
        for c in pg.zendesk.ticket_comments(ticket)
        if not c["public"] and "could not be handed over to product" in c["body"]
    ]


def shown(pg: Playground, ticket: int) -> tuple[str | None, list[str]]:
    tags = [t for t in pg.zendesk.ticket(ticket)["tags"] if t.startswith(PREFIX)]
    return pg.zendesk.field_value(ticket, pg.seed.stage_field_id), tags


def created(pg: Playground) -> list[dict]:
    return [i for i in pg.linear.issues.values() if i["title"] == SUBJECT]


def refuse_then_fix(pg: Playground, clock) -> tuple[int, int]:
    """The refused handoff as the agent sees it; then the admin fixes the route. Returns (ticket, dead action)."""
    with pg.app(clock=clock) as app:
        assert app.engine.cycle().ok  # the first sync
        ticket = complete_escalation(pg)
        cycle(app, clock)
        ref = Ref("zendesk", str(ticket))
        [dead] = app.store.list_outbox("dead")
        assert dead.op == "issue.create" and dead.target == "NOPE" and dead.attempts == 1
        assert created(pg) == []

        [note] = failure_notes(pg, ticket)
        assert note.startswith(
            "This ticket could not be handed over to product: Linear refused to create the issue in NOPE "
            "(there is no such team, project or repository, or syncd's account cannot see it)."
        )
        assert "An admin needs to fix the handoff route (product)" in note
        assert "SyncdIssueCreate" not in note and "NotFound" not in note  # no internal names
        assert shown(pg, ticket) == ("handoff_failed", [PREFIX + "handoff_failed"])
        [event] = [e for e in app.store.history(ref) if e.kind == "handoff_failed"]
        assert "Linear refused to create the issue in NOPE" in event.summary
        assert [s for s, _ in app.store.stage_history(ref)] == [Stage.NEW]

        for _ in range(3):  # told once; nothing is sent to NOPE again
            cycle(app, clock)
        assert len(failure_notes(pg, ticket)) == 1
        assert len(app.store.list_outbox("dead")) == 1
    set_team(pg.mappings_dir, "ENG")  # the admin fixes the route
    return ticket, dead.id


def handed_over_to_eng(pg: Playground, clock, ticket: int) -> None:
    ref = Ref("zendesk", str(ticket))
    [issue] = created(pg)
    assert pg.linear.issue(issue["id"])["identifier"].startswith("ENG-")
    assert shown(pg, ticket) == ("assigned", [PREFIX + "assigned"])
    with pg.app(clock=clock) as app:
        assert [r.issue.id for r in app.store.links_for_ticket(ref)] == [issue["id"]]
        creates = [r for s in ("dead", "dropped", "done") for r in app.store.list_outbox(s) if r.op == "issue.create"]
        assert sorted((r.state, r.target) for r in creates) == [("done", "ENG"), ("dropped", "NOPE")]
        cycle(app, clock)
    assert len(created(pg)) == 1 and len(failure_notes(pg, ticket)) == 1


def test_syncd_escalate_plans_the_refused_handoff_again_against_the_fixed_route(pg, clock):
    ticket, _ = refuse_then_fix(pg, clock)
    with pg.app(clock=clock) as app:
        outcome = app.engine.escalate(str(ticket))
        assert (outcome.route, outcome.tracker, outcome.place, outcome.dropped) == ("product", "linear", "ENG", 1)
        assert outcome.earlier_places == ["NOPE"]
        app.engine.deliver()
    handed_over_to_eng(pg, clock, ticket)


def test_retrying_the_dead_create_does_the_same_instead_of_sending_to_the_old_team(pg, clock):
    ticket, dead = refuse_then_fix(pg, clock)
    with pg.app(clock=clock) as app:
        row = app.store.get_action(dead)
        assert row.group == f"escalate:{Ref('zendesk', str(ticket))}"
    result = CliRunner().invoke(main, ["outbox", "retry", str(dead)], env=pg.cli_env())
    assert result.exit_code == 0, result.output
    assert f"ticket {ticket}: handoff planned again by route 'product': the issue is created in linear ENG" in (
        result.output
    )
    assert "(instead of NOPE)" in result.output
    handed_over_to_eng(pg, clock, ticket)


def test_escalate_refuses_what_there_is_nothing_to_hand_over_and_changes_nothing(pg, clock):
    with pg.app(clock=clock) as app:
        assert app.engine.cycle().ok
    linked = pg.seed.tickets["csv"]  # the seed links it to an issue
    runner = CliRunner()
    result = runner.invoke(main, ["escalate", str(linked)], env=pg.cli_env())
    assert result.exit_code == 1
    assert result.output.startswith(f"syncd: ticket #{linked} is already handed over: linked to ENG-")
    plain = pg.seed.tickets["vat"]  # not flagged
    result = runner.invoke(main, ["escalate", str(plain)], env=pg.cli_env())
    assert result.exit_code == 1 and "is not flagged for product" in result.output
    status = json.loads(runner.invoke(main, ["status", "--json"], env=pg.cli_env()).output)
    assert status["outbox"]["pending"] == 0


def test_a_create_that_may_have_landed_is_retried_as_it_is_never_planned_again(pg, clock):
    """A create whose connection broke after sending may have made the issue: planning it again
    (a new key, a new issue) could make it twice, so escalate refuses and retry looks for it first."""
    set_team(pg.mappings_dir, "ENG")
    pg.env["SYNCD_DAEMON__MAX_ATTEMPTS"] = "1"
    with pg.app(clock=clock) as app:
        assert app.engine.cycle().ok
        ticket = complete_escalation(pg)
        rule = pg.linear.inject("reset", r"POST /graphql SyncdIssueCreate")
        cycle(app, clock)
        [dead] = app.store.list_outbox("dead")
        assert dead.op == "issue.create" and dead.maybe_applied
        assert failure_notes(pg, ticket) == []  # not a refusal: nothing to tell the agent
        with pytest.raises(SyncdError, match=f"`syncd outbox retry {dead.id}` looks for it first"):
            app.engine.escalate(str(ticket))
        pg.linear.faults.remove(rule)
    result = CliRunner().invoke(main, ["outbox", "retry", str(dead.id)], env=pg.cli_env())
    assert result.exit_code == 0 and result.output == f"action {dead.id} will be retried\n"
    with pg.app(clock=clock) as app:
        # The command ran on the real clock, this test on the sandbox's Monday: due now on the test's clock too.
        assert app.store.get_action(dead.id).state == "sending"  # marked to be looked for first
        app.store.retry_action(dead.id)
        cycle(app, clock)
        assert app.store.get_action(dead.id).state == "done"  # the same create, looked for, then sent
    assert len(created(pg)) == 1
