"""Issues deleted, hidden or moved out of reach, on every tracker, end to end.

The fakes answer as the services do: Jira 404 "Issue does not exist or you do
not have permission to see it", Linear's trash (``trashed``) then "Entity not
found: Issue", GitHub 410 and a 301 for a transfer. syncd must end the links
with one note per ticket, never link a ticket to an issue the tracker says is
gone, find deletions of issues it no longer writes to with its periodic
existence check, and tell a ticket once when its issue moves out of reach.
"""

from __future__ import annotations

import json
import signal

import pytest

from connectors.base import find_markers
from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from tests.e2e.test_crash import kill_on, run_once

pytestmark = pytest.mark.e2e

GONE = "deleted, or is no longer visible to syncd's account"
NOT_LINKED = "deleted, or not visible to syncd's account, so this ticket was not linked"


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


@pytest.fixture
def app(pg):
    app = pg.app()
    app.engine.cycle()  # first sync
    yield app
    app.close()


def notes(pg: Playground, ticket_id: int) -> list[str]:
    return [c["body"] for c in pg.zendesk.ticket_comments(ticket_id) if find_markers(c["body"])]


def links_of(app, ticket_id: int) -> list:
    return app.store.links_for_ticket(Ref("zendesk", str(ticket_id)))


def tags(pg: Playground, ticket_id: int) -> list[str]:
    return pg.zendesk.ticket(ticket_id)["tags"]


def test_a_deleted_jira_issue_ends_every_link_once_and_is_never_linked_again(pg, app):
    gdpr, saml, sso = pg.seed.tickets["gdpr"], pg.seed.tickets["saml"], pg.seed.tickets["invite"]
    key = pg.seed.keys("jira")["gdpr"]
    pg.agent_note(gdpr, f"Platform tracks this as {key}.")
    app.engine.cycle()
    assert [r.issue.id for r in links_of(app, gdpr)] == [pg.seed.issue_ids("jira")["gdpr"]]
    assert "syncd_linked" in tags(pg, gdpr)

    pg.jira.delete_issue(key)
    # The next write to the issue (a second ticket's remote link) meets Jira's 404.
    pg.agent_note(saml, f"same root cause as {key}")
    report = app.engine.cycle()
    assert report.ok, report.summary()
    for ticket in (gdpr, saml):
        assert links_of(app, ticket) == []
        assert sum(GONE in n for n in notes(pg, ticket)) == 1
        assert "syncd_linked" not in tags(pg, ticket)
    assert app.store.gone_issue(Ref("jira", pg.seed.issue_ids("jira")["gdpr"]))["key"] == key
    assert app.store.outbox_counts()["dead"] == 0  # dropped with a reason, not dead-lettered

    # A third ticket names the key: the stored snapshot must not link it.
    pg.agent_note(sso, f"maybe {key}?")
    app.engine.cycle()
    assert links_of(app, sso) == []
    assert [n for n in notes(pg, sso) if key in n] == [next(n for n in notes(pg, sso) if NOT_LINKED in n)]
    assert not any(n.startswith(f"Linked to {key}") for n in notes(pg, sso))

    # Nothing more is said, and the deleted issue is not asked about again.
    before = {t: len(notes(pg, t)) for t in (gdpr, saml, sso)}
    pg.sandbox.reset_counts()
    for _ in range(2):
        report = app.engine.cycle()
        assert report.ok and report.delivery.done == 0, report.summary()
    assert {t: len(notes(pg, t)) for t in (gdpr, saml, sso)} == before
    assert set(pg.sandbox.counts()["jira"]) <= {"POST /rest/api/3/search/jql"}


def test_a_pasted_key_the_tracker_does_not_know_gets_a_note_and_no_link(pg, app):
    ticket = pg.seed.tickets["saml"]
    pg.agent_note(ticket, "is this PLAT-999?")
    app.engine.cycle()
    app.engine.cycle()
    assert links_of(app, ticket) == []
    assert [n for n in notes(pg, ticket) if "PLAT-999" in n and NOT_LINKED in n] != []
    assert len([n for n in notes(pg, ticket) if "PLAT-999" in n]) == 1


def test_the_periodic_check_finds_deletions_syncd_never_writes_to(pg, app):
    """Issues deleted on each tracker while nothing is written to them: the check
    (batched: one Jira and one Linear request for all their links) ends the links."""
    search, gdpr, push = pg.seed.tickets["search"], pg.seed.tickets["gdpr"], pg.seed.tickets["2fa"]
    pg.agent_note(search, f"engineering has this as {pg.seed.identifiers['search']}")
    pg.agent_note(gdpr, f"Platform tracks this as {pg.seed.keys('jira')['gdpr']}")
    pg.agent_note(push, f"see {pg.seed.keys('github')['push']}")
    app.engine.cycle()
    assert all(links_of(app, t) for t in (search, gdpr, push))

    pg.linear.delete_issue(pg.seed.identifiers["search"])  # into Linear's trash
    pg.jira.delete_issue(pg.seed.keys("jira")["gdpr"])
    pg.github.delete(pg.world("github").issue("push"))
    report = app.engine.cycle()  # polls see nothing of it: no write goes to these issues
    assert all(links_of(app, t) for t in (search, gdpr, push)), report.summary()

    pg.sandbox.reset_counts()
    spent = app.engine.check_presence(budget=10)
    counts = pg.sandbox.counts()
    assert counts["jira"] == {"POST /rest/api/3/issue/bulkfetch": 1}
    assert counts["linear"] == {"POST /graphql SyncdPresence": 1}
    assert spent["jira"] == 1 and spent["linear"] == 1
    app.engine.deliver()
    for ticket in (search, gdpr, push):
        assert links_of(app, ticket) == []
        assert sum(GONE in n for n in notes(pg, ticket)) == 1
        assert "syncd_linked" not in tags(pg, ticket)

    # Checked again: nothing new is said.
    app.engine.check_presence(budget=10)
    app.engine.deliver()
    for ticket in (search, gdpr, push):
        assert sum(GONE in n for n in notes(pg, ticket)) == 1


def test_the_daemon_runs_the_check_within_its_interval(pg):
    class Monotonic:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Monotonic()
    daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None), clock=clock, sleep=lambda _: None)
    try:
        ticket, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
        daemon.step()
        pg.agent_note(ticket, f"Platform tracks this as {key}")
        clock.now += 2
        daemon.step()
        assert links_of(daemon.app, ticket)
        pg.jira.delete_issue(key)
        interval = daemon.app.settings.daemon.presence_interval
        clock.now += interval / 2
        daemon.step()
        assert links_of(daemon.app, ticket)  # not yet due
        clock.now += interval / 2 + 1
        daemon.step()
        assert links_of(daemon.app, ticket) == []
        assert sum(GONE in n for n in notes(pg, ticket)) == 1
    finally:
        daemon.app.close()


@pytest.mark.parametrize("tracker", ["github", "jira", "linear"])
def test_an_issue_moved_out_of_reach_tells_the_ticket_once_and_the_link_stays(pg, app, tracker):
    if tracker == "github":
        ticket, key = pg.seed.tickets["2fa"], pg.seed.keys("github")["totp"]
        pg.github.create_repo("sandbox/archive", private=True)  # not in `repositories`
        move = lambda: pg.github.transfer(pg.world("github").issue("totp"), "sandbox/archive")  # noqa: E731
        place = "sandbox/archive"
    elif tracker == "jira":
        ticket, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
        pg.jira.add_project("LEGACY", "Legacy")  # not in `projects`
        move = lambda: pg.jira.move_project(key, "LEGACY")  # noqa: E731
        place = "LEGACY"
    else:
        ticket, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
        pg.linear.add_team("OLD", "Old team")  # not in `teams`
        move = lambda: pg.linear.move_team(key, "OLD")  # noqa: E731
        place = "OLD"
    pg.agent_note(ticket, f"tracked as {key}")
    app.engine.cycle()
    (link,) = links_of(app, ticket)
    move()
    for _ in range(2):
        app.engine.cycle()
        app.engine.check_presence(budget=50)
        app.engine.deliver()
    told = [n for n in notes(pg, ticket) if "which syncd does not follow" in n]
    assert len(told) == 1, notes(pg, ticket)
    assert place in told[0]
    assert [r.issue for r in links_of(app, ticket)] == [link.issue]  # it still exists: the link stays


def gdpr_in_bulk(request, ticket: int) -> bool:
    """Whether an Update Many with a body per ticket carries the gone note to ``ticket``."""
    bodies = json.loads(request.body or b"{}").get("tickets") or []
    return any(t.get("id") == ticket and "no longer visible" in json.dumps(t) for t in bodies)


def test_killed_after_the_gone_note_was_sent_does_not_send_it_twice(tmp_path):
    with Playground(tmp_path) as pg:
        gdpr, saml = pg.seed.tickets["gdpr"], pg.seed.tickets["saml"]
        key = pg.seed.keys("jira")["gdpr"]
        pg.agent_note(gdpr, f"Platform tracks this as {key}.")
        code, _, err = run_once(pg)
        assert code == 0, err
        pg.jira.delete_issue(key)
        pg.agent_note(saml, f"same as {key}")
        target = f"/api/v2/tickets/{gdpr}"
        start, holder = kill_on(
            pg,
            "zendesk",
            lambda endpoint, request: (
                request.method == "PUT"
                and b"no longer visible" in request.body
                and (request.path == target or (request.path.endswith("/update_many") and gdpr_in_bulk(request, gdpr)))
            ),
        )
        code, _, _ = run_once(pg, start)
        assert holder.get("done"), "the note was never sent"
        assert code == -signal.SIGKILL
        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        for ticket in (gdpr, saml):
            assert sum(GONE in n for n in notes(pg, ticket)) == 1, notes(pg, ticket)
            assert "syncd_linked" not in pg.zendesk.ticket(ticket)["tags"]


def test_the_check_reads_in_batches_within_its_budget_and_takes_the_least_recently_checked_first(tmp_path):
    """150 Jira issues are 2 bulk fetches; GitHub's 5 are 5 conditional GETs, at most
    ``budget`` a run, the least recently checked first; unchanged ones answer 304 for free."""
    from connectors.github.fake import GITHUB_REPOSITORIES
    from syncd.records import Link

    with Playground(tmp_path, seed_data=False) as pg:
        for name, private in GITHUB_REPOSITORIES:
            pg.github.create_repo(name, private=private)
        jira_ids = [pg.jira.create_issue("PLAT", f"Issue {n}").id for n in range(150)]
        github = [pg.github.create_issue("sandbox/billing", f"Issue {n}") for n in range(5)]
        app = pg.app()
        try:
            app.engine.cycle()  # the feeds read the new issues
            with app.store.transaction():
                for n, ident in enumerate(jira_ids):
                    app.store.add_link(Link(Ref("zendesk", str(90000 + n)), Ref("jira", ident), "field"))
                for n, issue in enumerate(github):
                    app.store.add_link(Link(Ref("zendesk", str(91000 + n)), Ref("github", str(issue.id)), "field"))
            pg.jira.delete_issue(pg.jira.issues[jira_ids[120]].key)
            pg.github.delete(github[4])

            pg.sandbox.reset_counts()
            assert app.engine.check_presence(budget=1) == {"jira": 1, "github": 1, "linear": 0}
            assert app.store.links_for_issue(Ref("jira", jira_ids[120]))  # not asked yet (the second hundred)
            assert app.engine.check_presence(budget=1) == {"jira": 1, "github": 1, "linear": 0}
            assert app.store.links_for_issue(Ref("jira", jira_ids[120])) == []  # found by the second request
            assert pg.sandbox.counts()["jira"] == {"POST /rest/api/3/issue/bulkfetch": 2}
            assert app.store.links_for_issue(Ref("github", str(github[4].id)))
            assert app.engine.check_presence(budget=3)["github"] == 3
            assert app.store.links_for_issue(Ref("github", str(github[4].id))) == []

            remaining = pg.github.rate_remaining
            for _ in range(2):  # a 304 keeps the ETag it matched
                assert app.engine.check_presence(budget=4)["github"] == 4  # each checked before: its ETag is sent
                assert pg.github.rate_remaining == remaining  # 304s cost nothing against the rate limit
        finally:
            app.close()


def test_the_check_sends_nothing_to_a_tracker_waiting_for_its_rate_limit_and_parks_one_that_meets_it(tmp_path):
    """GitHub's budget is spent with its reset an hour away: the first check meets the refusal and
    parks GitHub; the next check sends it nothing and still checks Jira."""
    from connectors.github.fake import GITHUB_REPOSITORIES
    from syncd.records import Link

    with Playground(tmp_path, seed_data=False) as pg:
        for name, private in GITHUB_REPOSITORIES:
            pg.github.create_repo(name, private=private)
        jira = pg.jira.create_issue("PLAT", "Issue")
        github = pg.github.create_issue("sandbox/billing", "Issue")
        app = pg.app()
        try:
            app.engine.cycle()
            with app.store.transaction():
                app.store.add_link(Link(Ref("zendesk", "90000"), Ref("jira", jira.id), "field"))
                app.store.add_link(Link(Ref("zendesk", "91000"), Ref("github", str(github.id)), "field"))
            pg.github.rate_remaining, pg.github.rate_reset = 0, int(app.engine.clock().timestamp()) + 3600
            assert app.engine.check_presence(budget=5)["github"] == 1  # the refusal
            assert app.engine.parking.until("github") is not None
            pg.sandbox.reset_counts()
            assert app.engine.check_presence(budget=5) == {"jira": 1, "linear": 0}
            assert "github" not in pg.sandbox.counts() or not pg.sandbox.counts()["github"]
            assert app.store.links_for_issue(Ref("github", str(github.id)))  # a limit is not a deletion
        finally:
            app.close()
