"""Escalation routed to GitHub Issues and Jira Cloud, end to end through the sandbox.

The shipped example mappings plus three routes placed before the catch-all:
a PUBLIC GitHub repository (anyone can read what syncd writes there: only an
opaque reference and counts), a PRIVATE one (the full handoff record) and a
Jira project (the key marker hidden as an issue property, the ticket shown as
a remote link). A complete flagged ticket creates exactly one issue in the
routed place, is linked to it and shows Assigned; a Jira issue moved to Done
makes the promise due.
"""

from __future__ import annotations

import html as html_module
import re
from pathlib import Path

import pytest

from connectors.base import find_markers
from mappings.planner import opaque_ref
from syncd.records import PromiseState, Ref, Stage
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox
from tests.e2e.handoff_support import MondayClock, copy_examples, cycle

pytestmark = pytest.mark.e2e

TRACKERS = ("linear", "github", "jira")
PUBLIC_REPO, PRIVATE_REPO, JIRA_PROJECT = "sandbox/mobile-sdk", "sandbox/billing", "PLAT"
STAGE_PREFIX = "syncd_stage_"
CATCH_ALL = "# Everything else goes to Engineering"


def route(name: str, tracker: str, team: str, states: str, label: str) -> str:
    """A route to another tracker, chosen by the tag ``name`` the agent puts on the ticket."""
    return f"""\
[routes.{name}]
tracker = "{tracker}"
team = "{team}"
escalate = {{ tag = "escalated" }}
acceptance = "bug-report"
states = "{states}"
promises = "standard"
severity = {{ field = "36000000010", order = ["sev1", "sev2", "sev3", "sev4"] }}
labels = ["{label}"]

[routes.{name}.match]
tags = ["{name}"]

"""


TRACKER_ROUTES = (
    route("sdk", "github", PUBLIC_REPO, "github", "bug")
    + route("billing", "github", PRIVATE_REPO, "github", "bug")
    + route("platform", "jira", JIRA_PROJECT, "jira", "customer report")
)


def tracker_mappings(tmp_path: Path) -> Path:
    """The shipped example set with the GitHub and Jira routes put before the catch-all route."""
    directory = copy_examples(tmp_path)
    routes = directory / "routes.toml"
    text = routes.read_text()
    assert text.count(CATCH_ALL) == 1, "the example routes.toml changed: place the routes anew"
    routes.write_text(text.replace(CATCH_ALL, TRACKER_ROUTES + CATCH_ALL))
    return directory


@pytest.fixture
def clock():
    return MondayClock()


@pytest.fixture
def pg(tmp_path, clock):
    sandbox = build_sandbox(clock=clock, trackers=TRACKERS)
    with Playground(
        tmp_path / "work", sandbox=sandbox, trackers=TRACKERS, mappings=tracker_mappings(tmp_path)
    ) as playground:
        yield playground


@pytest.fixture
def app(pg, clock):
    app = pg.app(clock=clock)
    assert app.engine.cycle().ok  # the first sync of the seeded desk
    yield app
    app.close()


def complete_ticket(pg, subject: str, *, tag: str, customer: str = "hannah@northwind.example") -> int:
    """A complete bug report from a Northwind customer, flagged for product by Priya with an internal note."""
    zendesk = pg.zendesk
    agent = pg.seed.agents["Priya Raman"]
    requester = pg.seed.customers[customer]
    ticket = zendesk.create_ticket(
        subject,
        "Steps: open the shipment list and tap Export. Expected: the file downloads. Every dispatcher is affected.",
        requester_id=requester,
        status="open",
        tags=[tag],
        assignee_id=agent,
        organization_id=zendesk.users[requester]["organization_id"],
        custom_fields={pg.seed.severity_field_id: "sev2"},
    )["id"]
    pg.agent_note(ticket, "Context for product: their night shift cannot export; workaround is the web app.")
    pg.agent_set_tags(ticket, [*pg.zendesk.ticket(ticket)["tags"], "escalated"])
    return ticket


def stage_shown(pg, ticket: int) -> tuple[str | None, list[str]]:
    tags = [t for t in pg.zendesk.ticket(ticket)["tags"] if t.startswith(STAGE_PREFIX)]
    return pg.zendesk.field_value(ticket, pg.seed.stage_field_id), tags


def linked_notes(pg, ticket: int) -> list[str]:
    return [
        c["body"]
        for c in pg.zendesk.ticket_comments(ticket)
        if not c["public"] and find_markers(c["body"]) and c["body"].startswith("Linked to")
    ]


def github_issues_in(pg, repo: str) -> list:
    return [i for i in pg.github.issues.values() if i.repo.full_name == repo]


def rendered(markdown: str) -> str:
    """Markdown as a reader sees it: backslash escapes of punctuation removed (so an escaped leak still counts)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def customer_details(pg, ticket: int) -> dict[str, str]:
    """What identifies the customer or the case: none of it may reach a public repository."""
    t = pg.zendesk.ticket(ticket)
    requester = pg.zendesk.users[t["requester_id"]]
    org = pg.zendesk.organizations[requester["organization_id"]]
    return {
        "organisation": org["name"],
        "requester": requester["name"],
        "e-mail": requester["email"],
        "e-mail domain": requester["email"].split("@")[1],
        "subject": t["subject"],
        "helpdesk URL": pg.zendesk.agent_url(ticket),
        "helpdesk host": pg.sandbox.url("zendesk"),
        "internal note": "night shift cannot export",
    }


# -- GitHub -----------------------------------------------------------------------------------------


def test_escalation_to_a_public_repository_writes_only_an_opaque_reference(pg, app, clock):
    before = {i.id for i in pg.github.issues.values()}
    ticket = complete_ticket(pg, "Android SDK export crashes at Northwind depots", tag="sdk")
    ref = Ref("zendesk", str(ticket))
    cycle(app, clock)

    created = [i for i in pg.github.issues.values() if i.id not in before]
    assert [i.repo.full_name for i in created] == [PUBLIC_REPO]  # one issue, in the routed repository
    [issue] = created
    assert [(r.issue.connector, r.issue.id, r.origin) for r in app.store.links_for_ticket(ref)] == [
        ("github", str(issue.id), "escalation")
    ]
    assert stage_shown(pg, ticket) == ("assigned", [STAGE_PREFIX + "assigned"])
    assert [s for s, _ in app.store.stage_history(ref)][-1] is Stage.ASSIGNED
    key = f"{PUBLIC_REPO}#{issue.number}"
    assert len(linked_notes(pg, ticket)) == 1 and key in linked_notes(pg, ticket)[0]

    cycle(app, clock)  # the demand comment and the context comment settle; nothing is created again
    assert [i.id for i in pg.github.issues.values() if i.id not in before] == [issue.id]
    comments = pg.world("github").comment_bodies(str(issue.id))
    assert any("Support demand: 1 ticket(s) from 1 organisation(s)" in c for c in comments), comments
    assert any("Linked support tickets: 1" in c for c in comments), comments
    everything = rendered("\n".join([issue.title, issue.body, *comments]))
    assert opaque_ref(ref) in issue.title and opaque_ref(ref) in rendered(issue.body)
    for what, detail in customer_details(pg, ticket).items():
        assert detail.lower() not in everything.lower(), (what, everything)
    assert "@" not in everything.replace("<!--", "")  # no e-mail address of any kind


def test_escalation_to_a_private_repository_carries_the_whole_handoff_record(pg, app, clock):
    before = {i.id for i in pg.github.issues.values()}
    subject = "Invoice export drops the VAT column"
    ticket = complete_ticket(pg, subject, tag="billing")
    ref = Ref("zendesk", str(ticket))
    cycle(app, clock)

    created = [i for i in pg.github.issues.values() if i.id not in before]
    assert [i.repo.full_name for i in created] == [PRIVATE_REPO]
    [issue] = created
    body = issue.body
    assert "Northwind Logistics" in body and "enterprise" in body  # organisation and its plan
    assert pg.zendesk.agent_url(ticket) in body and "sev2" in body
    assert "night shift cannot export" in body  # the agent's internal note
    assert "an update within 2 business days" in body  # the promise made at the handoff
    assert subject in issue.title
    assert [(r.issue.id, r.origin) for r in app.store.links_for_ticket(ref)] == [(str(issue.id), "escalation")]
    assert stage_shown(pg, ticket) == ("assigned", [STAGE_PREFIX + "assigned"])
    promises = app.store.promises_for_ticket(ref)
    assert promises and all(p.issues == (Ref("github", str(issue.id)),) for p in promises)

    cycle(app, clock)
    assert [i.id for i in pg.github.issues.values() if i.id not in before] == [issue.id]
    assert len(linked_notes(pg, ticket)) == 1
    comments = pg.world("github").comment_bodies(str(issue.id))
    demand = [c for c in comments if "Support demand" in c]
    assert len(demand) == 1 and "Northwind Logistics" in demand[0]  # private: customers named


# -- Jira -------------------------------------------------------------------------------------------


def test_escalation_to_jira_creates_one_issue_with_a_hidden_marker_and_a_remote_link(pg, app, clock):
    before = set(pg.jira.issues)
    subject = "Shipment API rejects empty reference numbers"
    ticket = complete_ticket(pg, subject, tag="platform")
    ref = Ref("zendesk", str(ticket))
    cycle(app, clock)

    created = [i for ident, i in pg.jira.issues.items() if ident not in before]
    assert [i.project for i in created] == [JIRA_PROJECT]
    [issue] = created
    # The marker is the issue property holding the escalation's outbox key.
    assert issue.properties["syncd"] == {"key": app.store.get_meta(ref)["escalation"]["key"]}
    description = str(issue.description)
    assert not find_markers(description) and "syncd:" not in description  # not in the text
    assert "Northwind Logistics" in description and "night shift cannot export" in description
    assert issue.labels == ["customer-report"]  # sanitised: Jira labels have no spaces
    assert [(r.issue.connector, r.issue.id, r.origin) for r in app.store.links_for_ticket(ref)] == [
        ("jira", issue.id, "escalation")
    ]
    [link] = issue.remotelinks
    assert link["object"]["url"] == pg.zendesk.agent_url(ticket)
    assert stage_shown(pg, ticket) == ("assigned", [STAGE_PREFIX + "assigned"])
    assert len(linked_notes(pg, ticket)) == 1 and issue.key in linked_notes(pg, ticket)[0]

    cycle(app, clock)
    assert [i for i in pg.jira.issues if i not in before] == [issue.id]  # nothing created twice
    assert len(issue.remotelinks) == 1

    # Product finishes the work: the promise falls due and the agent is told.
    assert {p.state for p in app.store.promises_for_ticket(ref)} == {PromiseState.OPEN}
    pg.world("jira").move(issue.key, "Done")
    cycle(app, clock)
    assert stage_shown(pg, ticket)[0] == "resolved"
    due = [p for p in app.store.promises_for_ticket(ref) if p.state is PromiseState.DUE]
    assert sorted(p.what for p in due) == ["an update within 2 business days", "news when the linked work ships"]
    notes = [
        c["body"]
        for c in pg.zendesk.ticket_comments(ticket)
        if not c["public"] and "We promised the customer" in c["body"]
    ]
    assert len(notes) == 1 and issue.key in notes[0]


# -- text in the format of the place it goes ----------------------------------------------------------

PUNCTUATED_SUBJECT = "Audit log (November); expected 120 rows, got 80. Export #1017: `csv` *all* [x] <b> & ~ | ! _"
PUNCTUATED_NOTE = (
    "Context: audit log (November); expected 120 rows, got 80. Ops saw it at 06:23 (batch-3)! "
    "[urgent] *now* _please_ ~x~ | y <tag> & z"
)


def adf_text(node) -> str:
    """The text Jira shows of an ADF document: its text nodes, blocks on their own lines."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return node.get("text", "")
    if node.get("type") == "hardBreak":
        return "\n"
    sep = "" if node.get("type") == "paragraph" else "\n"
    return sep.join(adf_text(child) for child in node.get("content", []))


def markdown_seen(markdown: str) -> str:
    """What a CommonMark renderer shows of ``markdown``: tags dropped, entities decoded."""
    import html

    from markdown_it import MarkdownIt

    rendered_html = MarkdownIt("commonmark").enable(["strikethrough", "table"]).render(markdown)
    return html.unescape(re.sub(r"<[^>]*>", "", rendered_html)).replace("\u2060", "")


def punctuated_ticket(pg) -> int:
    ticket = complete_ticket(pg, PUNCTUATED_SUBJECT, tag="platform")
    pg.agent_note(ticket, PUNCTUATED_NOTE)  # the latest internal note goes into the handoff record
    return ticket


def history_output(pg, app, ticket: int) -> str:
    from click.testing import CliRunner

    from syncd.cli import main

    app.close()  # the command opens the store itself
    result = CliRunner().invoke(main, ["history", str(ticket)], env=pg.cli_env())
    assert result.exit_code == 0, result.output
    return result.output


def test_escalation_to_jira_writes_punctuation_without_markdown_escapes(pg, app, clock):
    before = set(pg.jira.issues)
    ticket = punctuated_ticket(pg)
    cycle(app, clock)
    cycle(app, clock)

    [issue] = [i for ident, i in pg.jira.issues.items() if ident not in before]
    shown = adf_text(issue.description)
    assert "\\" not in shown, shown  # ADF has no escapes: a backslash would be shown as one
    assert f"Zendesk #{ticket}" in shown and PUNCTUATED_NOTE in shown, shown
    assert issue.summary == PUNCTUATED_SUBJECT
    # The helpdesk note names the issue's title as it is (plain text, Zendesk makes the HTML).
    [note] = [c for c in pg.zendesk.ticket_comments(ticket) if not c["public"] and c["body"].startswith("Linked to")]
    assert PUNCTUATED_SUBJECT in note["body"] and "\\" not in note["body"]
    html_seen = html_module.unescape(re.sub(r"<[^>]+>", "", note["html_body"]))
    assert PUNCTUATED_SUBJECT in html_seen
    history = history_output(pg, app, ticket)
    assert "\\" not in history, history
    assert PUNCTUATED_SUBJECT in history


def test_escalation_to_github_reads_as_written_and_history_shows_no_escapes(pg, app, clock):
    before = {i.id for i in pg.github.issues.values()}
    ticket = complete_ticket(pg, PUNCTUATED_SUBJECT, tag="billing")
    pg.agent_note(ticket, PUNCTUATED_NOTE)
    cycle(app, clock)
    cycle(app, clock)  # the demand and context comments settle

    [issue] = [i for i in pg.github.issues.values() if i.id not in before]
    assert issue.title == PUNCTUATED_SUBJECT  # a title is plain text
    seen = markdown_seen(issue.body)
    assert f"Zendesk #{ticket}" in seen and PUNCTUATED_NOTE in seen, seen
    assert "syncd:" not in seen  # the hidden marker stays hidden
    comments = "\n".join(markdown_seen(c) for c in pg.world("github").comment_bodies(str(issue.id)))
    assert "Support demand" in comments and f"Zendesk #{ticket}: {PUNCTUATED_SUBJECT}" in comments, comments
    assert "syncd:" not in comments and "<!--" not in comments
    history = history_output(pg, app, ticket)
    assert "\\" not in history, history
    assert "demand comment kept current: Support demand" in history and PUNCTUATED_SUBJECT in history


def test_an_escalated_jira_issue_deleted_at_once_is_left_for_a_person_not_read_again_forever(pg, app, clock):
    """Jira answers 404 (Gone) for the issue the escalation just created: syncd records
    that it could not link it, once, instead of reading it again every cycle."""

    def delete_on_create(endpoint, request, response):
        if request.method == "POST" and request.path == "/rest/api/3/issue" and response.status == 201:
            pg.jira.delete_issue(response.body["key"])

    pg.jira.listeners.append(delete_on_create)
    complete_ticket(pg, "Shipment API rejects empty reference numbers", tag="platform")
    cycle(app, clock)
    assert app.store.unfinished_creates() == []
    pg.sandbox.reset_counts()
    cycle(app, clock)
    assert "GET /rest/api/3/issue/{issueIdOrKey}" not in pg.sandbox.counts()["jira"]
