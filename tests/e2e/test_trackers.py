"""GitHub Issues and Jira Cloud end to end, through the sandbox with all three trackers.

Real HTTP against the fakes, the real store and the engine's cycles; people
act through the services' APIs (or, where the real service has none, the
fake's own methods). Customer data is checked where anyone could read it:
the comment bodies the GitHub fake stores for a public repository.
"""

from __future__ import annotations

import signal

import pytest

from connectors.base import find_markers
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox
from tests.e2e.test_crash import kill_on, run_once

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path) as playground:
        yield playground


@pytest.fixture
def app(pg):
    app = pg.app()
    app.engine.cycle()  # first sync: seeded field links, backfill of every feed
    yield app
    app.close()


def syncd_notes(pg: Playground, ticket_id: int) -> list[dict]:
    return [c for c in pg.zendesk.ticket_comments(ticket_id) if find_markers(c["body"])]


def status_field(pg: Playground, ticket_id: int):
    return pg.zendesk.field_value(ticket_id, pg.seed.linked_issue_status_field_id)


def github_url(pg: Playground, short: str) -> str:
    issue = pg.world("github").issue(short)
    return f"{pg.sandbox.url('github')}/{issue.repo.full_name}/issues/{issue.number}"


def customer_details(pg: Playground, ticket_id: int) -> list[str]:
    """Everything about a ticket that identifies the customer or the case."""
    ticket = pg.zendesk.ticket(ticket_id)
    requester = pg.zendesk.users[ticket["requester_id"]]
    org = pg.zendesk.organizations[requester["organization_id"]]
    return [
        ticket["subject"],
        ticket["description"][:40],
        requester["name"],
        requester["email"],
        requester["email"].split("@")[1],
        org["name"],
        pg.zendesk.agent_url(ticket_id),
    ]


def assert_no_customer_data(pg: Playground, short: str, ticket_ids: list[int]) -> None:
    bodies = "\n".join(pg.world("github").comment_bodies(short))
    for ticket_id in ticket_ids:
        for detail in customer_details(pg, ticket_id):
            assert detail.lower() not in bodies.lower(), (detail, bodies)


def links_of(app, ticket_id: int) -> list:
    return app.store.links_for_ticket(Ref("zendesk", str(ticket_id)))


# -- the sandbox itself ---------------------------------------------------------------------------


def test_linear_only_sandbox_is_still_possible(tmp_path):
    sandbox = build_sandbox(trackers=("linear",))
    assert sorted(sandbox.services) == ["linear", "zendesk"]
    assert sandbox.seed.issue_ids("github") == {} and sandbox.seed.issue_ids("jira") == {}
    with Playground(tmp_path, sandbox=sandbox) as pg:
        text = pg.config_path.read_text()
        assert 'trackers = ["linear"]' in text and "[connectors.github]" not in text
        assert set(pg.env) == {"SYNCD_CONNECTORS__ZENDESK__TOKEN", "SYNCD_CONNECTORS__LINEAR__API_KEY"}


def test_seeded_trackers_have_public_and_private_repositories_and_a_plat_project():
    seed = build_sandbox().seed
    assert seed.trackers["github"].places == {"sandbox/mobile-sdk": "public", "sandbox/billing": "private"}
    assert {k.split("#")[0] for k in seed.keys("github").values()} == set(seed.trackers["github"].places)
    assert all(k.startswith(("PLAT-", "INFRA-")) for k in seed.keys("jira").values())
    assert seed.to_dict() == build_sandbox().seed.to_dict()  # deterministic


# -- GitHub ---------------------------------------------------------------------------------------


def test_github_link_by_url_in_a_public_repository_writes_only_an_opaque_reference(pg, app):
    two_fa, invite = pg.seed.tickets["2fa"], pg.seed.tickets["invite"]
    key = pg.seed.keys("github")["totp"]
    pg.agent_note(two_fa, f"Mobile team tracks it: {github_url(pg, 'totp')}")
    pg.agent_note(invite, f"Probably the same SDK bug as {key}")
    report = app.engine.cycle()
    assert report.ok, report.summary()

    for ticket in (two_fa, invite):
        assert [r.issue.id for r in links_of(app, ticket)] == [pg.seed.issue_ids("github")["totp"]]
        assert f"Linked to {key}" in syncd_notes(pg, ticket)[0]["body"]
        assert status_field(pg, ticket) == f"{key}: Open (ada-novak)"
    assert [r.origin for r in links_of(app, two_fa)] == ["comment"]

    bodies = pg.world("github").comment_bodies("totp")
    assert len(bodies) == 1  # one context comment, edited in place
    assert "Linked support tickets: 2" in bodies[0]
    assert_no_customer_data(pg, "totp", [two_fa, invite])


def test_private_repository_shows_the_ticket_until_it_turns_public(pg, app):
    vat, slack = pg.seed.tickets["vat"], pg.seed.tickets["slack"]
    key = pg.seed.keys("github")["vat"]
    pg.agent_note(vat, f"Billing has this as {key}")
    app.engine.cycle()
    (body,) = pg.world("github").comment_bodies("vat")
    assert "Invoice PDF shows the wrong VAT rate" in body and "Fjord Analytics" in body

    pg.github.set_visibility("sandbox/billing", "public")
    pg.agent_note(slack, f"also {key}?")
    report = app.engine.cycle()
    assert report.ok, report.summary()
    assert len(links_of(app, slack)) == 1
    (body,) = pg.world("github").comment_bodies("vat")
    assert "Linked support tickets: 2" in body
    # The next write leaks nothing, and rewrites what was written while private.
    assert_no_customer_data(pg, "vat", [vat, slack])


def test_github_close_as_completed_or_not_planned_tells_the_tickets(pg, app):
    vat, two_fa = pg.seed.tickets["vat"], pg.seed.tickets["2fa"]
    pg.agent_note(vat, f"see {pg.seed.keys('github')['vat']}")
    pg.agent_note(two_fa, f"see {pg.seed.keys('github')['totp']}")
    app.engine.cycle()
    pg.agent_set_status(vat, "pending")

    pg.world("github").close("vat", "completed")
    pg.world("github").close("totp", "not_planned")
    report = app.engine.cycle()
    assert report.ok, report.summary()
    assert "is Closed (completed)" in syncd_notes(pg, vat)[-1]["body"]
    assert "follow up with the customer" in syncd_notes(pg, vat)[-1]["body"]
    assert pg.zendesk.ticket(vat)["status"] == "open"  # reopened from pending
    assert "is Closed (not planned)" in syncd_notes(pg, two_fa)[-1]["body"]
    assert status_field(pg, two_fa) == f"{pg.seed.keys('github')['totp']}: Closed (not planned) (ada-novak)"


def test_transferred_issue_keeps_its_link_and_the_ticket_shows_the_new_key(pg, app):
    two_fa, invite = pg.seed.tickets["2fa"], pg.seed.tickets["invite"]
    old_key = pg.seed.keys("github")["totp"]
    pg.agent_note(two_fa, f"see {old_key}")
    app.engine.cycle()
    issue = pg.github.transfer(pg.world("github").issue("totp"), "sandbox/billing")
    new_key = f"sandbox/billing#{issue.number}"
    app.engine.cycle()
    assert [r.issue.id for r in links_of(app, two_fa)] == [pg.seed.issue_ids("github")["totp"]]
    assert status_field(pg, two_fa).startswith(f"{new_key}: ")
    assert any(e.kind == "issue_moved" for e in app.store.history(Ref("zendesk", str(two_fa))))

    # Someone pastes the old address: GitHub answers 301 and the link is to the same issue.
    pg.agent_note(invite, f"same as {old_key}")
    report = app.engine.cycle()
    assert report.ok, report.summary()
    assert [r.issue.id for r in links_of(app, invite)] == [pg.seed.issue_ids("github")["totp"]]
    pg.world("github").close(new_key)
    app.engine.cycle()
    assert f"{new_key} is Closed (completed)" in syncd_notes(pg, two_fa)[-1]["body"]


def test_deleted_issue_ends_its_links_with_a_note_and_no_error_loop(pg, app):
    two_fa, invite = pg.seed.tickets["2fa"], pg.seed.tickets["invite"]
    key = pg.seed.keys("github")["push"]
    pg.agent_note(two_fa, f"see {key}")
    app.engine.cycle()
    pg.github.delete(pg.world("github").issue("push"))
    # The next write to the issue meets its 410.
    pg.agent_note(invite, f"same as {key}")
    app.engine.cycle()
    for ticket in (two_fa, invite):
        assert links_of(app, ticket) == []
        assert "deleted" in syncd_notes(pg, ticket)[-1]["body"]
        assert "syncd_linked" not in pg.zendesk.ticket(ticket)["tags"]
    notes = {t: len(syncd_notes(pg, t)) for t in (two_fa, invite)}
    pg.sandbox.reset_counts()
    for _ in range(3):
        report = app.engine.cycle()
        assert report.ok, report.summary()
        assert report.delivery.done == 0
    assert {t: len(syncd_notes(pg, t)) for t in (two_fa, invite)} == notes
    assert "github" not in pg.sandbox.counts() or set(pg.sandbox.counts()["github"]) <= {
        "GET /repos/{owner}/{repo}/issues"
    }


# -- Jira -----------------------------------------------------------------------------------------


def test_jira_link_by_key_puts_a_remote_link_on_the_issue(pg, app):
    gdpr, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
    pg.agent_note(gdpr, f"Platform tracks this as {key}.")
    report = app.engine.cycle()
    assert report.ok, report.summary()
    assert f"Linked to {key}" in syncd_notes(pg, gdpr)[0]["body"]
    assert status_field(pg, gdpr) == f"{key}: In Progress (Lena Fischer)"
    (link,) = pg.jira.get(key).remotelinks
    assert link["object"]["url"] == pg.zendesk.agent_url(gdpr)
    assert "GDPR data export is missing attachments" in link["object"]["title"]
    app.engine.cycle()
    assert len(pg.jira.get(key).remotelinks) == 1


def test_jira_browse_url_link_follows_status_categories_and_reopens_when_done(pg, app):
    saml, key = pg.seed.tickets["saml"], pg.seed.keys("jira")["saml"]
    pg.agent_note(saml, f"{pg.sandbox.url('jira')}/browse/{key}")
    app.engine.cycle()
    assert [r.issue.id for r in links_of(app, saml)] == [pg.seed.issue_ids("jira")["saml"]]

    pg.world("jira").move("saml", "In Progress")
    app.engine.cycle()
    assert f"{key} moved from To Do to In Progress" in syncd_notes(pg, saml)[-1]["body"]

    pg.agent_set_status(saml, "pending")
    pg.world("jira").move("saml", "Done")
    app.engine.cycle()
    assert "follow up with the customer" in syncd_notes(pg, saml)[-1]["body"]
    assert pg.zendesk.ticket(saml)["status"] == "open"
    assert status_field(pg, saml) == f"{key}: Done (Ada Novak)"


def test_jira_issue_moved_to_another_project_is_followed(pg, app):
    gdpr, key = pg.seed.tickets["gdpr"], pg.seed.keys("jira")["gdpr"]
    pg.agent_note(gdpr, f"see {key}")
    app.engine.cycle()
    moved = pg.world("jira").move_project("gdpr", "INFRA")
    app.engine.cycle()
    assert moved.key.startswith("INFRA-")
    assert [r.issue.id for r in links_of(app, gdpr)] == [pg.seed.issue_ids("jira")["gdpr"]]
    assert status_field(pg, gdpr).startswith(f"{moved.key}: ")
    pg.world("jira").move(moved.key, "Done")
    app.engine.cycle()
    assert f"{moved.key} is Done" in syncd_notes(pg, gdpr)[-1]["body"]


def test_ticket_linked_to_linear_and_jira_is_resolved_only_when_both_are_closed(pg, app):
    ticket = pg.seed.tickets["search"]
    linear_key, jira_key = pg.seed.identifiers["search"], pg.seed.keys("jira")["digest"]
    pg.agent_note(ticket, f"Needs {linear_key} and {jira_key}")
    app.engine.cycle()
    assert len(links_of(app, ticket)) == 2
    pg.agent_set_status(ticket, "pending")

    pg.engineer_move(linear_key, "Done")
    app.engine.cycle()
    note = syncd_notes(pg, ticket)[-1]["body"]
    assert "Still waiting on" in note and jira_key in note
    assert pg.zendesk.ticket(ticket)["status"] == "pending"

    pg.world("jira").move("digest", "Done", resolution="Won't Do")
    app.engine.cycle()
    note = syncd_notes(pg, ticket)[-1]["body"]
    assert "Every linked issue is now closed" in note and linear_key in note and jira_key in note
    assert pg.zendesk.ticket(ticket)["status"] == "open"


# -- cost -----------------------------------------------------------------------------------------


def test_idle_cycles_cost_one_request_per_feed_and_github_answers_304(pg, app):
    pg.agent_note(pg.seed.tickets["2fa"], f"see {pg.seed.keys('github')['totp']}")
    pg.agent_note(pg.seed.tickets["vat"], f"see {pg.seed.keys('github')['vat']}")
    pg.agent_note(pg.seed.tickets["gdpr"], f"see {pg.seed.keys('jira')['gdpr']}")
    pg.world("jira").move("saml", "In Progress")
    pg.world("github").close("proration")
    for _ in range(3):  # the link, then the echoes of syncd's own writes, then overlap windows
        app.engine.cycle()
    statuses = []
    pg.github.listeners.append(lambda endpoint, request, response: statuses.append(response.status))
    pg.sandbox.reset_counts()
    for _ in range(3):
        report = app.engine.cycle()
        assert report.ok and report.delivery.done == 0
    counts = pg.sandbox.counts()
    assert counts["zendesk"] == {"GET /api/v2/incremental/tickets/cursor": 3}
    assert counts["linear"] == {"POST /graphql SyncdIssues": 3}
    assert counts["jira"] == {"POST /rest/api/3/search/jql": 3}
    # One conditional request per repository, each a 304 (free against the rate limit).
    assert counts["github"] == {"GET /repos/{owner}/{repo}/issues": 3 * len(pg.seed.trackers["github"].places)}
    assert statuses == [304] * (3 * len(pg.seed.trackers["github"].places))


# -- crash ----------------------------------------------------------------------------------------


def test_killed_after_a_github_comment_was_sent_does_not_post_it_again(tmp_path):
    with Playground(tmp_path) as pg:
        ticket, key = pg.seed.tickets["vat"], pg.seed.keys("github")["vat"]
        pg.agent_note(ticket, f"billing bug {key}")
        start, holder = kill_on(
            pg, "github", lambda endpoint, request: request.method == "POST" and endpoint.endswith("/comments")
        )
        code, _, _ = run_once(pg, start)
        assert holder.get("done"), "the comment was never sent"
        assert code == -signal.SIGKILL
        assert len(pg.world("github").comment_bodies("vat")) == 1  # it landed before the kill
        for _ in range(2):
            code, _, err = run_once(pg)
            assert code == 0, err
        bodies = pg.world("github").comment_bodies("vat")
        assert len(bodies) == 1, bodies
        assert "Linked support tickets: 1" in bodies[0]
        assert len([n for n in syncd_notes(pg, ticket) if n["body"].startswith("Linked to")]) == 1


# -- the demo -------------------------------------------------------------------------------------


def test_demo_tells_the_github_and_jira_story_and_exits_0():
    import io
    import re
    from datetime import datetime, timezone

    from syncd.demo import run_demo

    out = io.StringIO()
    assert run_demo(out=out, start=datetime(2026, 12, 1, 21, 50, tzinfo=timezone.utc)) == 0  # the story's clock
    text = out.getvalue()
    comment = text.split("The context comment syncd keeps on")[1].split("the remote link:")[0]
    assert "Linked support tickets: 1" in comment and re.search(r"Support ticket `[0-9a-f]{12}`", comment)
    assert "Two-factor" not in comment and "jonas" not in comment.lower() and "Acme" not in comment
    assert re.search(r"On PLAT-\d+, the remote link: Zendesk .*GDPR", text)
    saml = text.split("#10 SAML certificate rotation")[-1].split("\n#")[0]
    # The resolution's note is the promise-due note of the example mappings (it lists every issue).
    assert "Still waiting on:" in saml and "PLAT-2 is Done." in saml and "- ENG-1: Done" in saml
    assert "status: open" in saml
    idle = text.split("idle cycle:")[1].splitlines()[0]
    assert "nothing to write" in idle
    # People read the story, the timeline and the report as plain text: no Markdown escape shows.
    assert "\\" not in text, [line for line in text.splitlines() if "\\" in line]


def test_jira_idle_poll_is_one_search_after_a_settled_burst_of_changes(tmp_path):
    """A bulk edit an hour ago must not be re-read by every later poll."""
    from datetime import timedelta

    from tests.e2e.handoff_support import MondayClock

    clock = MondayClock()  # the fakes' and syncd's time, never the machine's
    sandbox = build_sandbox(clock=clock)
    an_hour_ago = clock.now - timedelta(hours=1)
    for i in range(250):  # three pages of search results
        sandbox["jira"].create_issue("PLAT", f"Imported defect {i}", at=an_hour_ago)
    with Playground(tmp_path, sandbox=sandbox) as pg:
        app = pg.app(clock=clock)
        try:
            app.engine.cycle()
            pg.sandbox.reset_counts()
            for _ in range(3):
                clock.advance(minutes=1)
                assert app.engine.cycle().ok
            assert pg.sandbox.counts()["jira"] == {"POST /rest/api/3/search/jql": 3}
        finally:
            app.close()


def test_issues_stored_before_their_state_words_were_kept_get_them_once_from_their_tracker(pg, app):
    """An upgrade from a store whose issue snapshots have no ``native``: the app fills them in
    (the words each connector's normalise gives), so the admin's state rules still hold."""
    from syncd.app import fill_native

    pg.world("github").close("vat", "completed")
    pg.world("github").close("totp", "not_planned")
    pg.world("jira").move(next(iter(pg.seed.keys("jira").values())), "Done")
    app.engine.cycle()
    store = app.store
    issues = {
        name: [i for i in store.get_snapshots([r for r in _issue_refs(store, name)]).values()]
        for name in ("linear", "github", "jira")
    }
    assert all(issues.values())
    assert {i.native.get("reason") for i in issues["github"]} >= {"completed", "not_planned", None}
    with store.transaction():
        store._x("UPDATE snapshots SET data = json_remove(data, '$.native') WHERE kind = 'issue'")
    assert sum(len(store.issues_without_native(n)) for n in issues) == sum(map(len, issues.values()))
    assert fill_native(store, app.engine.trackers) == sum(map(len, issues.values()))
    for name, before in issues.items():
        after = store.get_snapshots([i.ref for i in before])
        assert {i.ref: i.native for i in before} == {r: i.native for r, i in after.items()}, name
    assert fill_native(store, app.engine.trackers) == 0  # once


def _issue_refs(store, connector: str) -> list[Ref]:
    rows = store._q("SELECT id FROM snapshots WHERE connector = ? AND kind = 'issue'", [connector])
    return [Ref(connector, r[0]) for r in rows]
