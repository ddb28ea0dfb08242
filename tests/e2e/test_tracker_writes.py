"""What a first sync sends to the trackers, through the sandbox (issue 13): Linear's writes
several to a request, GitHub's tickets shown in one write per issue with no read the
feed already answered, every form of a GitHub issue's key found in the store."""

from __future__ import annotations

import pytest

from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


def test_tickets_naming_one_github_issue_in_every_form_cost_one_comment_and_no_read(tmp_path):
    with Playground(tmp_path) as pg:
        key = pg.seed.keys("github")["vat"]  # sandbox/billing#1
        repo, number = key.split("#")
        web = pg.sandbox["github"].base_url
        forms = [key, key.upper(), f"{web}/{repo}/issues/{number}", f"{web}/{repo.upper()}/issues/{number}/"]
        tickets = [pg.seed.tickets[name] for name in ("sso", "csv", "webhook", "android")]
        for ticket, form in zip(tickets, forms):
            pg.agent_note(ticket, f"engineering tracks this as {form}")
        pg.sandbox.reset_counts()
        app = pg.app()
        try:
            assert app.engine.cycle().ok
        finally:
            app.close()
        github = pg.sandbox.counts()["github"]
        # no read of the issue (the feed had it, under every form), of its comments (the
        # feed said it has none) or of its repository per link: once per repository on the
        # poll, and once more before the one write into this private repository (a free 304)
        assert not any("/issues/{number}" in e and e.startswith("GET") for e in github), github
        assert github.get("POST /repos/{owner}/{repo}/issues/{number}/comments") == 1, github
        assert github.get("GET /repos/{owner}/{repo}", 0) <= 3, github
        issue = next(i for i in pg.github.issues.values() if f"{i.repo.full_name}#{i.number}" == key)
        (comment,) = pg.github.comments_of(issue)
        assert "Linked support tickets: 4" in comment.body
