"""The conversation crosses over, end to end through the sandbox (the helpdesk and GitHub fakes).

An engineer's comment on a linked issue reaches each linked ticket once as an
internal note, its edit is noted, a bot's comment is not mirrored; an agent's
``#eng`` note reaches a private issue in full and a public one without the
customer (or is held, and the agent told why); nothing echoes back over 20
cycles; a crash between a send and its commit writes nothing twice. A
deleted GitHub or Linear comment (their feeds do not list deletions) is
noted once after the existence check of mirrored comments; Linear's idle
cycle with comments read is one request.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors.base import find_markers
from syncd.app import build_app
from syncd.daemon import Daemon
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from tests.e2e.test_crash import kill_on, run_once
from tests.e2e.test_trackers import customer_details, github_url

pytestmark = pytest.mark.e2e

RULES = """
[routes.support]
tracker = "github"
team = "sandbox/billing"

[routes.support.conversation]
direction = "both"
prefix = "#eng"
ignore = ["ci-bot"]
"""


def mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "routes.toml").write_text(textwrap.dedent(RULES).lstrip())
    return folder


@pytest.fixture
def pg(tmp_path):
    with Playground(tmp_path / "pg", mappings=mappings(tmp_path)) as playground:
        yield playground


def mirrored(pg: Playground, ticket_id: int) -> list[str]:
    """syncd's internal notes on the ticket that carry a tracker comment (or say one was held)."""
    return [
        c["body"]
        for c in pg.zendesk.ticket_comments(ticket_id)
        if find_markers(c["body"]) and not c["body"].startswith(("Linked to", "Linked"))
    ]


def gh_comment_id(pg: Playground, text: str) -> str:
    return next(str(c.id) for c in pg.github.comments_by_id.values() if text in c.body)


def link(pg: Playground, app, ticket_id: int, short: str) -> None:
    pg.agent_note(ticket_id, f"Engineering tracks it: {github_url(pg, short)}")
    report = app.engine.cycle()
    assert report.ok, report.summary()


def test_the_conversation_crosses_both_ways_once(pg):
    gh = pg.tracker("github")
    two_fa, invite = pg.seed.tickets["2fa"], pg.seed.tickets["invite"]
    app = pg.app()
    try:
        app.engine.cycle()  # first sync; the rule is switched on now
        link(pg, app, two_fa, "vat")
        link(pg, app, invite, "vat")
        before = {t: len(mirrored(pg, t)) for t in (two_fa, invite)}

        # An engineer's comment reaches both linked tickets, once each, attributed and with its link.
        cid = gh.comment("vat", "Fixed in 4.2, workaround: re-run the export with --chunked", by="Ada Novak")
        app.engine.cycle()
        app.engine.cycle()
        key = gh.key("vat")
        for ticket in (two_fa, invite):
            notes = mirrored(pg, ticket)[before[ticket] :]
            assert len(notes) == 1, notes
            assert notes[0].startswith(f"ada-novak on {key}:\nFixed in 4.2")
            assert f"#issuecomment-{cid}" in notes[0]

        # An edit is noted; a bot's comment is not mirrored.
        gh.edit_comment(cid, "Fixed in 4.3 (4.2 was pulled)", by="Ada Novak")
        gh.comment("vat", "CI: build 812 passed", by="ci-bot")
        app.engine.cycle()
        for ticket in (two_fa, invite):
            notes = mirrored(pg, ticket)[before[ticket] :]
            assert len(notes) == 2, notes
            assert notes[1].startswith(f"ada-novak edited their comment on {key}:\nFixed in 4.3")
            assert not any("build 812" in n for n in notes)

        # An agent's #eng note: in full on the private issue, without the customer on the public one.
        link(pg, app, two_fa, "totp")
        pg.agent_note(two_fa, "#eng It happens only on Safari 17, after the export finishes")
        app.engine.cycle()
        private = [b for b in gh.comment_bodies("vat") if "Safari 17" in b]
        assert len(private) == 1 and "Priya Raman on Zendesk ticket" in private[0]
        assert pg.zendesk.agent_url(two_fa) in private[0]
        public = [b for b in gh.comment_bodies("totp") if "Safari 17" in b]
        assert len(public) == 1 and public[0].startswith("From support (T-")
        for detail in customer_details(pg, two_fa) + ["Priya"]:
            assert detail.lower() not in public[0].lower(), detail

        # A note naming the customer goes in full where it is private, is held for the public issue.
        requester = pg.zendesk.users[pg.zendesk.ticket(two_fa)["requester_id"]]
        pg.agent_note(two_fa, f"#eng {requester['name']} sees it every morning")
        app.engine.cycle()
        assert len([b for b in gh.comment_bodies("vat") if "every morning" in b]) == 1
        assert not [b for b in gh.comment_bodies("totp") if "every morning" in b]
        held = [n for n in mirrored(pg, two_fa) if "was not copied to" in n]
        assert len(held) == 1 and "customer's name" in held[0] and gh.key("totp") in held[0]

        # Nothing echoes back: 20 more cycles write nothing on either side.
        counts = (
            {t: len(pg.zendesk.ticket_comments(t)) for t in (two_fa, invite)},
            {k: len(gh.comment_bodies(k)) for k in ("vat", "totp")},
        )
        for _ in range(20):
            report = app.engine.cycle()
            assert report.ok, report.summary()
        assert counts == (
            {t: len(pg.zendesk.ticket_comments(t)) for t in (two_fa, invite)},
            {k: len(gh.comment_bodies(k)) for k in ("vat", "totp")},
        )

        # An idle cycle: the comment feed is one more conditional request per repository, a free 304.
        for name in pg.sandbox.services:
            pg.sandbox[name].reset_counts()
        remaining = pg.github.rate_remaining
        assert app.engine.cycle().ok
        repositories = len(pg.seed.trackers["github"].places)
        assert dict(pg.github.counts) == {
            "GET /repos/{owner}/{repo}/issues": repositories,
            "GET /repos/{owner}/{repo}/issues/comments": repositories,
        }
        assert pg.github.rate_remaining == remaining  # both answered 304: free
        assert sum(pg.zendesk.counts.values()) == 1

        # The history tells each mirrored comment with its source.
        events = [e for e in app.store.history(Ref("zendesk", str(two_fa))) if e.kind == "conversation"]
        assert any("ada-novak's comment on" in e.summary and f"#issuecomment-{cid}" in e.summary for e in events)
        assert any("Priya Raman's note" in e.summary for e in events)
    finally:
        app.close()


def test_comments_made_before_the_rule_was_on_are_not_replayed(pg):
    gh = pg.tracker("github")
    two_fa = pg.seed.tickets["2fa"]
    clock = pg.github._clock  # the fake's clock (epoch seconds): the remark is an hour old
    pg.github._clock = lambda: clock() - 3600
    try:
        gh.comment("vat", "An old remark from before syncd mirrored anything", by="Ada Novak")
    finally:
        pg.github._clock = clock
    app = pg.app()
    try:
        app.engine.cycle()
        link(pg, app, two_fa, "vat")
        gh.edit_comment(gh_comment_id(pg, "old remark"), "An old remark, edited since", by="Ada Novak")
        app.engine.cycle()
        assert not any("old remark" in n for n in mirrored(pg, two_fa))
        gh.comment("vat", "A new remark", by="Ada Novak")
        app.engine.cycle()
        assert len([n for n in mirrored(pg, two_fa) if "A new remark" in n]) == 1
    finally:
        app.close()


def test_killed_between_sending_a_mirrored_note_and_recording_it_writes_it_once(pg):
    gh = pg.tracker("github")
    two_fa = pg.seed.tickets["2fa"]
    app = pg.app()
    try:
        app.engine.cycle()
        link(pg, app, two_fa, "vat")
    finally:
        app.close()
    gh.comment("vat", "Root cause found: the rate table", by="Ada Novak")
    target = f"/api/v2/tickets/{two_fa}"
    start, holder = kill_on(
        pg,
        "zendesk",
        lambda endpoint, request: request.method == "PUT" and request.path == target and b"Root cause" in request.body,
    )
    code, _, _ = run_once(pg, start)
    assert holder.get("done") and code == -signal.SIGKILL
    for _ in range(2):
        code, _, err = run_once(pg)
        assert code == 0, err
    assert len([n for n in mirrored(pg, two_fa) if "Root cause" in n]) == 1

    # And the other way: an agent's note sent to the issue, the process killed before it recorded it.
    pg.agent_note(two_fa, "#eng Customer retried twice, same result")
    start, holder = kill_on(
        pg, "github", lambda endpoint, request: request.method == "POST" and b"retried" in request.body
    )
    code, _, _ = run_once(pg, start)
    assert holder.get("done") and code == -signal.SIGKILL
    for _ in range(2):
        code, _, err = run_once(pg)
        assert code == 0, err
    assert len([b for b in gh.comment_bodies("vat") if "retried twice" in b]) == 1

    # `syncd history` tells each mirrored comment with its source.
    shown = subprocess.run(
        [sys.executable, "-m", "syncd", "history", str(two_fa)], env=pg.cli_env(), capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if " conversation " in line]
    assert any("ada-novak's comment on" in line and "#issuecomment-" in line for line in lines), shown.stdout
    assert any("Priya Raman's note on" in line and "in full" in line for line in lines), shown.stdout


JIRA_RULES = """
[routes.platform]
tracker = "jira"
team = "PLAT"

[routes.platform.conversation]
direction = "both"
prefix = "#eng"
"""


def test_jira_comments_cross_restricted_ones_do_not_and_a_deletion_is_noted(tmp_path):
    from connectors.jira.adf import to_text

    folder = tmp_path / "jira-mappings"
    folder.mkdir()
    (folder / "routes.toml").write_text(textwrap.dedent(JIRA_RULES).lstrip())
    with Playground(tmp_path / "pg", mappings=folder) as pg:
        jira = pg.tracker("jira")
        ticket, key = pg.seed.tickets["2fa"], pg.seed.keys("jira")["gdpr"]
        app = pg.app()
        try:
            app.engine.cycle()
            pg.agent_note(ticket, f"Platform tracks it as {key}")
            assert app.engine.cycle().ok
            first = jira.comment("gdpr", "Root cause: the export never walks the object store", by="Lena Fischer")
            jira.comment(
                "gdpr", "Only for the team: their bucket is 40 TB", by="Lena Fischer", restricted_to="Developers"
            )
            assert app.engine.cycle().ok
            notes = mirrored(pg, ticket)
            crossed = [n for n in notes if "Root cause" in n]
            assert len(crossed) == 1 and crossed[0].startswith(f"Lena Fischer on {key}:")
            assert not any("40 TB" in n for n in notes)

            jira.delete_comment(first)
            assert app.engine.cycle().ok
            deleted = [n for n in mirrored(pg, ticket) if "deleted their comment" in n]
            assert len(deleted) == 1 and deleted[0].startswith(f"Lena Fischer deleted their comment on {key}")

            pg.agent_note(ticket, "#eng The customer exports 3 times a day")
            assert app.engine.cycle().ok
            issue = pg.jira.get(pg.seed.issue_ids("jira")["gdpr"])
            texts = [to_text(c["body"]) for c in issue.comments]
            assert len([t for t in texts if "exports 3 times a day" in t]) == 1

            counts = (len(pg.zendesk.ticket_comments(ticket)), len(issue.comments))
            for _ in range(5):
                assert app.engine.cycle().ok
            assert counts == (len(pg.zendesk.ticket_comments(ticket)), len(pg.jira.get(issue.id).comments))
        finally:
            app.close()


def test_the_daemon_polling_feed_by_feed_reads_comments_only_where_a_rule_mirrors(pg):
    app = pg.app()
    try:
        app.engine.poll("github")  # as `syncd run` does, one feed at a time
        assert app.engine.trackers["github"].read_comments
        assert not app.engine.trackers["linear"].read_comments  # no route to it mirrors comments
        assert not app.engine.trackers["jira"].read_comments
    finally:
        app.close()


def test_a_note_planned_in_full_for_a_private_repository_that_turns_public_is_never_sent(pg):
    gh = pg.tracker("github")
    two_fa = pg.seed.tickets["2fa"]
    app = pg.app()
    try:
        app.engine.cycle()
        link(pg, app, two_fa, "vat")
        pg.agent_note(two_fa, "#eng Reproduced on the customer's staging tenant")
        app.engine.cycle(deliver=False)  # planned in full: the repository is private
        pg.github.set_visibility("sandbox/billing", "public")
        app.engine.deliver()
        app.engine.cycle()
        assert not [b for b in gh.comment_bodies("vat") if "staging tenant" in b]
        told = [n for n in mirrored(pg, two_fa) if "was not copied to" in n]
        assert len(told) == 1 and gh.key("vat") in told[0] and "readable by anyone" in told[0]
        assert app.store.outbox_counts().get("pending", 0) == 0
    finally:
        app.close()


def test_a_deleted_github_comment_is_noted_once_after_the_existence_check(pg):
    gh = pg.tracker("github")
    two_fa, invite = pg.seed.tickets["2fa"], pg.seed.tickets["invite"]
    app = pg.app()
    try:
        app.engine.cycle()
        link(pg, app, two_fa, "vat")
        link(pg, app, invite, "vat")
        cid = gh.comment("vat", "Fixed in 4.2", by="Ada Novak")
        app.engine.cycle()
        app.engine.cycle()
        before = {t: len(mirrored(pg, t)) for t in (two_fa, invite)}
        assert all("Fixed in 4.2" in mirrored(pg, t)[-1] for t in (two_fa, invite))

        # Still there: one conditional request, nothing said; the next one is answered 304.
        pg.sandbox.reset_counts()
        assert app.engine.check_comments(budget=10) == {"github": 1}
        assert app.engine.check_comments(budget=10) == {"github": 1}
        assert pg.sandbox.counts()["github"] == {"GET /repos/{owner}/{repo}/issues/comments/{comment_id}": 2}
        app.engine.deliver()
        assert {t: len(mirrored(pg, t)) for t in (two_fa, invite)} == before

        # The engineer deletes it: the comment feed does not show it, the existence check does.
        gh.delete_comment(cid)
        app.engine.cycle()
        assert {t: len(mirrored(pg, t)) for t in (two_fa, invite)} == before
        for _ in range(3):
            app.engine.check_comments(budget=10)
            app.engine.cycle()
        key = gh.key("vat")
        for ticket in (two_fa, invite):
            notes = mirrored(pg, ticket)[before[ticket] :]
            assert len(notes) == 1, notes
            assert notes[0].startswith(f"ada-novak deleted their comment on {key}: ")
            assert f"#issuecomment-{cid}" in notes[0]
        # Known deleted, it is not asked about again.
        assert app.engine.check_comments(budget=10) == {"github": 0}
    finally:
        app.close()


def test_the_daemon_checks_mirrored_comments_on_its_presence_interval(pg):
    class Monotonic:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    gh = pg.tracker("github")
    two_fa = pg.seed.tickets["2fa"]
    clock = Monotonic()
    daemon = Daemon(pg.settings, lambda s: build_app(s, sleep=lambda _: None), clock=clock, sleep=lambda _: None)
    try:
        daemon.step()
        pg.agent_note(two_fa, f"Engineering tracks it: {github_url(pg, 'vat')}")
        clock.now += 2
        daemon.step()
        cid = gh.comment("vat", "Fixed in 4.2", by="Ada Novak")
        for _ in range(2):
            clock.now += 60
            daemon.step()
        before = len(mirrored(pg, two_fa))
        assert "Fixed in 4.2" in mirrored(pg, two_fa)[-1]
        gh.delete_comment(cid)
        interval = daemon.app.settings.daemon.presence_interval
        clock.now += interval / 2
        daemon.step()
        clock.now += 60
        daemon.step()
        assert len(mirrored(pg, two_fa)) == before  # not yet due
        clock.now += interval / 2 + 1
        daemon.step()
        clock.now += 60
        daemon.step()
        notes = mirrored(pg, two_fa)[before:]
        assert len(notes) == 1 and "deleted their comment" in notes[0], notes
    finally:
        daemon.app.close()


LINEAR_RULES = """
[routes.product]
tracker = "linear"
team = "ENG"

[routes.product.conversation]
direction = "to_ticket"
"""


def test_linear_comments_come_in_the_feed_request_and_a_deletion_is_noted_once(tmp_path):
    folder = tmp_path / "linear-mappings"
    folder.mkdir()
    (folder / "routes.toml").write_text(textwrap.dedent(LINEAR_RULES).lstrip())
    with Playground(tmp_path / "pg", mappings=folder) as pg:
        lin = pg.tracker("linear")
        ticket, key = pg.seed.tickets["2fa"], pg.seed.keys("linear")["search"]
        app = pg.app()
        try:
            app.engine.cycle()
            pg.agent_note(ticket, f"Engineering tracks it as {key}")
            assert app.engine.cycle().ok
            pg.sandbox.reset_counts()
            assert app.engine.cycle().ok
            assert pg.sandbox.counts().get("linear") == {"POST /graphql SyncdFeed": 1}  # idle: one request

            cid = lin.comment("search", "The indexer runs a second worker from 4.2", by="Ada Novak")
            assert app.engine.cycle().ok
            crossed = [n for n in mirrored(pg, ticket) if "second worker" in n]
            assert len(crossed) == 1 and crossed[0].startswith(f"Ada Novak on {key}:")

            lin.delete_comment(cid)
            for _ in range(3):
                assert app.engine.cycle().ok
                app.engine.check_comments(budget=10)
            app.engine.deliver()
            deleted = [n for n in mirrored(pg, ticket) if "deleted their comment" in n]
            assert len(deleted) == 1 and deleted[0].startswith(f"Ada Novak deleted their comment on {key}")
            assert app.engine.check_comments(budget=10) == {"linear": 0}
        finally:
            app.close()
