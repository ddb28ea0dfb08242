"""``syncd demo``: a handoff story played against the sandbox.

The sandbox (fake Zendesk, Linear, GitHub and Jira on loopback ports) is
seeded with a small support desk and product teams in all three trackers. The people in the story act through the
services' public APIs, as they would in the real tools; syncd runs its
cycles in between; then the timeline of what syncd saw and wrote, and the
final state of the linked tickets and issues, are printed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from mappings.escaping import shown
from mappings.files import EXAMPLES
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.seed import SeedResult


class Story:
    def __init__(self, pg: Playground, out: TextIO, clock: DemoClock | None = None):
        if pg.seed is None:
            raise ValueError("the demo plays on a seeded sandbox")
        self.pg = pg
        self.seed: SeedResult = pg.seed
        self.jira = pg.jira_fake()
        self.handoff: dict[str, int] = {}  # the handoff chapter's tickets, once played
        self.out = out
        self.clock = clock or DemoClock()
        self.app = pg.app(clock=self.clock)
        self.t0 = time.monotonic()
        self.chapter = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def step(self, who: str, text: str) -> None:
        self.clock.jump(timedelta(minutes=1))  # people take a moment between acts
        self.chapter += 1
        self.say(f"\n{self.chapter}. {who}: {text}")

    def cycle(self, label: str = "syncd cycle") -> None:
        self.clock.jump(timedelta(minutes=1))
        before = self.pg.sandbox.total_requests()
        first_event = self.app.store.last_event_id()
        report = self.app.engine.cycle()
        spent = self.pg.sandbox.total_requests() - before
        self.say(f"   ↻ {label}: {report.summary()} — {spent} API request(s)")
        for event in self.app.store.events_since(first_event):
            if event.kind in ("delivered",):
                continue
            self.say(f"     · {event.summary}")

    def run_cli(self, *args: str) -> None:
        """Run the real ``syncd`` command, as an admin would in a shell."""
        self.app.close()  # the command takes the store's lock for its write
        result = subprocess.run(
            [sys.executable, "-m", "syncd", *args], env=self.pg.cli_env(), capture_output=True, text=True, timeout=60
        )
        self.say(f"   $ syncd {' '.join(args)}")
        for line in (result.stdout + result.stderr).strip().splitlines():
            self.say(f"     {line}")
        if result.returncode != 0:
            raise RuntimeError(f"syncd {' '.join(args)} exited {result.returncode}")
        self.app = self.pg.app(clock=self.clock)


class DemoClock:
    """Real time, plus however far the story has jumped ahead ("two business days later")."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def jump(self, delta: timedelta) -> None:
        self.offset += delta


def example_mappings(workdir: Path) -> Path:
    """The shipped example mapping set, copied as an admin would start from it."""
    target = workdir / "mappings"
    shutil.copytree(EXAMPLES, target)
    return target


def run_demo(*, keep: bool = False, out: TextIO = sys.stdout) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    clock = DemoClock()
    try:
        with Playground(workdir, clock=clock, mappings=example_mappings(workdir)) as pg:
            story = Story(pg, out, clock)
            try:
                play(story)
                show_timeline(story)
                show_final_state(story)
            finally:
                story.app.close()
        if keep:
            print(f"\nState kept in {workdir} (store: {workdir / 'syncd.db'})", file=out)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def play(story: Story) -> None:
    pg, seed = story.pg, story.seed
    tickets, keys = seed.tickets, seed.identifiers
    story.say(
        "syncd demo — fake services on loopback: "
        + ", ".join(f"{name} {pg.sandbox.url(name)}" for name in ("zendesk", *pg.trackers))
    )
    story.say(
        f"Seeded: {len(tickets)} tickets from {len(seed.organizations)} organisations; "
        f"Linear {len(seed.issues)} issues (teams {', '.join(seed.teams)}), "
        f"GitHub {len(seed.github_issues)} issues ("
        + ", ".join(f"{r} {v}" for r, v in seed.repositories.items())
        + "), "
        f"Jira {len(seed.jira_issues)} issues (projects {', '.join(seed.jira_projects)})."
    )

    story.step(
        "syncd",
        "first run: reads the ticket and issue feeds; agents had already named issues "
        "in the 'Linked issue' field of some tickets, and flagged some for product",
    )
    story.cycle()

    handoff = play_handoff(story)

    search_ticket, search_issue = tickets["search"], keys["search"]
    url = f"https://linear.app/sandbox/issue/{search_issue}/search-index-lags"
    story.step("Priya (support agent)", f"pastes {url} into an internal note on ticket #{search_ticket}")
    pg.agent_note(search_ticket, f"Engineering tracks this as {url} — linking so we hear when it moves.")
    story.cycle()

    saml_ticket, sso_issue = tickets["saml"], keys["sso"]
    story.step("Tomás (support lead)", f"links ticket #{saml_ticket} to {sso_issue} from the command line")
    story.run_cli("link", str(saml_ticket), sso_issue)

    twofa_ticket, sdk_key = tickets["2fa"], seed.github_keys["totp"]
    sdk = pg.github_issue("totp")
    sdk_url = f"{pg.sandbox.url('github')}/{sdk.repo.full_name}/issues/{sdk.number}"
    story.step(
        "Mei (support agent)",
        f"pastes {sdk_url} — an issue in the PUBLIC repository "
        f"{sdk.repo.full_name} — into an internal note on ticket #{twofa_ticket}",
    )
    pg.agent_note(twofa_ticket, f"The SDK team has this: {sdk_url}", agent="Mei Chen")
    gdpr_ticket, gdpr_key = tickets["gdpr"], seed.jira_keys["gdpr"]
    story.step("Priya", f"notes that ticket #{gdpr_ticket} is Jira issue {gdpr_key}")
    pg.agent_note(gdpr_ticket, f"Platform tracks this as {gdpr_key}.")
    saml_key = seed.jira_keys["saml"]
    story.step(
        "Tomás",
        f"adds that ticket #{saml_ticket} also needs Jira issue {saml_key} "
        f"(it is now linked to a Linear and a Jira issue)",
    )
    pg.agent_note(
        saml_ticket, f"Needs the platform fix too: {pg.sandbox.url('jira')}/browse/{saml_key}", agent="Tomás Ortega"
    )
    story.cycle()
    story.say(f"   The context comment syncd keeps on {sdk_key} (public: no customer, only a reference and a count):")
    for body in pg.github_comment_bodies("totp"):
        say_rendered(story, body, story.app.engine.trackers["github"].text_format)
    for link in story.jira.get(gdpr_key).remotelinks:
        story.say(
            f"   The remote link on {gdpr_key}: {link['object']['title']} "
            f"({link['object'].get('summary', '')}) → {link['object']['url']}"
        )

    story.step("Ada (engineer)", f"moves {search_issue} to In Progress; in Jira, {saml_key} goes to In Progress")
    pg.engineer_move(search_issue, "In Progress", engineer="Ada Novak")
    pg.jira_move("saml", "In Progress")
    story.step("Priya", f"tells the customers on #{search_ticket} and #{saml_ticket} and sets both to pending")
    for ticket in (search_ticket, saml_ticket):
        pg.agent_note(ticket, "Our engineers are working on it; we will update you as soon as it ships.", public=True)
        pg.agent_set_status(ticket, "pending")
    story.cycle()

    story.step(
        "Ada",
        f"ships the fix: {search_issue} → Done; Sam closes {sso_issue} as Done too "
        f"(#{saml_ticket} still waits on {saml_key})",
    )
    pg.engineer_move(search_issue, "Done", engineer="Ada Novak")
    pg.engineer_move(sso_issue, "Done", engineer="Sam Okafor")
    story.cycle()

    story.step(
        "Jira",
        f"{saml_key} → Done: now every issue #{saml_ticket} waits on is closed; "
        f"on GitHub, {sdk_key} is closed as completed",
    )
    pg.jira_move("saml", "Done")
    pg.github_close("totp", "completed", login="ada-novak")
    story.cycle()

    play_promises(story, handoff)
    story.handoff = handoff

    story.step("syncd", "runs again with nothing new to do")
    story.cycle("idle cycle")

    story.step("Tomás", "prints the review for this week's support/product meeting (syncd report)")
    show_report(story)


def play_handoff(story: Story) -> dict[str, int]:
    """One ticket through every stage: New, Needs context, Assigned, Waiting, Resolved, Follow-up."""
    pg, seed = story.pg, story.seed
    zendesk = pg.zendesk
    hannah = seed.customers["hannah@northwind.example"]
    jonas = seed.customers["jonas@acmehealth.example"]
    priya = seed.agents["Priya Raman"]
    subject = "Route planner drops the last stop on long routes"
    ticket = zendesk.create_ticket(
        subject,
        "When a route has more than 20 stops, the last stop is not shown.",
        requester_id=hannah,
        status="open",
        assignee_id=priya,
        organization_id=seed.organizations["Northwind Logistics"],
    )["id"]
    story.step("Hannah (Northwind, customer)", f"opens ticket #{ticket}: {subject!r}")
    story.step("Priya", f"flags #{ticket} for product (tag 'escalated'); it has no severity, steps or impact yet")
    pg.agent_set_tags(ticket, ["escalated"])
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step(
        "Priya", "adds the steps, what should happen and who is affected in an internal note, and sets Severity to sev2"
    )
    pg.agent_note(
        ticket,
        "Steps: plan a route with 21 stops and open it in the driver app.\n"
        "Expected: all 21 stops are listed.\n"
        "Impact: every Northwind dispatcher with long routes is affected; drivers miss deliveries.",
    )
    zendesk.update_ticket(ticket, author_id=priya, custom_fields={seed.severity_field_id: "sev2"})
    story.cycle()
    [link] = story.app.store.links_for_ticket(Ref("zendesk", str(ticket)))
    issue = pg.linear.issue(link.issue.id)
    key = issue["identifier"]
    show_handoff_fields(story, ticket)
    story.say(f"   {key} as created in Linear (the handoff record):")
    say_rendered(story, issue["description"], story.app.engine.trackers["linear"].text_format)

    other = zendesk.create_ticket(
        "Last delivery stop missing",
        "Our drivers do not see the final stop.",
        requester_id=jonas,
        status="open",
        assignee_id=priya,
        organization_id=seed.organizations["Acme Health"],
    )["id"]
    story.step("Jonas (Acme Health, customer)", f"reports the same problem in ticket #{other}")
    story.step("Priya", f"flags #{other} too, and notes it is {key}: linked, no second issue")
    pg.agent_set_tags(other, ["escalated"])
    pg.agent_note(other, f"Same problem as #{ticket}, tracked as {key}.")
    story.cycle()
    show_demand(story, key)

    story.step("Ada (engineer)", f"takes {key} and starts it")
    pg.engineer_move(key, "In Progress", engineer="Ada Novak")
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step("Ada", f"ships the fix: {key} → Done")
    pg.engineer_move(key, "Done", engineer="Ada Novak")
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step("Priya", f"tells Hannah on #{ticket} that the fix is live (a public reply): the promise is kept")
    pg.agent_note(ticket, "The fix for long routes is live; all stops show again. Sorry for the trouble!", public=True)
    story.cycle()
    show_handoff_fields(story, ticket)
    return {"ticket": ticket, "other": other}


def play_promises(story: Story, handoff: dict[str, int]) -> None:
    """The clock breaks a promise nobody kept; a closed ticket gets a follow-up ticket."""
    pg, seed = story.pg, story.seed
    csv = seed.tickets["csv"]
    story.step("Tomás", f"solves #{csv}; Zendesk's automation closes it (closed tickets cannot be reopened)")
    pg.agent_set_status(csv, "solved", agent="Tomás Ortega")
    pg.zendesk.close_ticket(csv)
    story.cycle()
    story.step("Ravi (engineer)", f"ships {seed.identifiers['csv']}, the issue #{csv} waited on")
    pg.engineer_move(seed.identifiers["csv"], "Done", engineer="Ravi Patel")
    story.cycle()
    followups = [t for t in pg.zendesk.tickets if pg.zendesk.ticket(t)["via"]["source"].get("rel") == "follow_up"]
    for tid in followups:
        story.say(f"   follow-up ticket #{tid}: {pg.zendesk.ticket(tid)['subject']}")

    story.step("time", f"three business days pass; nobody has replied on #{handoff['other']}")
    story.clock.jump(timedelta(days=5))
    story.cycle()
    tags = [t for t in pg.zendesk.ticket(handoff["other"])["tags"] if "promise" in t]
    story.say(f"   #{handoff['other']} tags now include: {', '.join(tags) or '—'}")


def show_report(story: Story) -> None:
    """What ``syncd report`` prints, computed at the story's time (it has jumped days ahead of the clock
    a separate ``syncd report`` process would read)."""
    from mappings.review import render
    from syncd.report import review

    engine = story.app.engine
    kinds = {name: tracker.kind for name, tracker in engine.trackers.items()}
    text = render(review(story.app.store, engine.mappings, kinds, now=story.clock()), "table")
    for line in text.rstrip().splitlines():
        story.say(f"     {line}")


def show_handoff_fields(story: Story, ticket: int) -> None:
    seed, zendesk = story.seed, story.pg.zendesk
    stage = zendesk.field_value(ticket, seed.stage_field_id) or "—"
    missing = zendesk.field_value(ticket, seed.missing_field_id) or ""
    tags = [t for t in zendesk.ticket(ticket)["tags"] if t.startswith("syncd_stage_")]
    story.say(f"   #{ticket} in Zendesk — Follow-up stage: {stage}; stage tag: {', '.join(tags) or '—'}")
    if missing.strip():
        story.say("   'Handoff: still missing' field:")
        for line in missing.splitlines():
            story.say(f"     {line}")


def show_demand(story: Story, key: str) -> None:
    for comment in story.pg.linear.issue(key)["comments"]:
        if "Support demand" in comment["body"]:
            story.say(f"   The demand comment syncd keeps on {key} (edited in place):")
            say_rendered(story, comment["body"], story.app.engine.trackers["linear"].text_format)


def say_rendered(story: Story, text: str, fmt: str) -> None:
    """A comment or description as its tracker shows it: no escapes, no hidden markers."""
    for line in shown(text, fmt).splitlines():
        if line.strip():
            story.say(f"     │ {line.rstrip()}")


def show_timeline(story: Story) -> None:
    story.say("\nTimeline (syncd's event history)")
    story.say("-" * 78)
    events = story.app.store.events_since(0, limit=10000)
    start = events[0].at if events else None
    for event in events:
        offset = (event.at - start).total_seconds() if start else 0.0
        line = f"+{offset:6.2f}s  {event.kind:<12} {event.summary}"
        story.say(textwrap.shorten(line, 140, placeholder=" …"))


def show_final_state(story: Story) -> None:
    pg, store = story.pg, story.app.store
    seed = story.seed
    field_id = seed.linked_issue_status_field_id
    story.say("\nFinal state of the tickets in the story")
    story.say("-" * 78)
    shown = [*story.handoff.values(), *(seed.tickets[k] for k in ("search", "saml", "2fa", "gdpr"))]
    for ticket_id in shown:
        ticket = pg.zendesk.ticket(ticket_id)
        story.say(f"#{ticket['id']} {ticket['subject']}")
        story.say(f"   status: {ticket['status']}   tags: {', '.join(ticket['tags'])}")
        story.say(f"   Linked issue status: {pg.zendesk.field_value(ticket['id'], field_id) or '—'}")
        for comment in pg.zendesk.ticket_comments(ticket["id"]):
            if "syncd:" in comment["body"]:
                first, *rest = comment["body"].splitlines()
                story.say(f"   internal note: {textwrap.shorten(first, 100, placeholder=' …')}")
                for line in rest:
                    if line.startswith("- "):  # which issues are closed, or still awaited
                        story.say(f"                  {line}")
    story.say("\nFinal state of the issues in the story")
    story.say("-" * 78)
    for key in ("search", "sso"):
        issue = pg.linear.issue(seed.issues[key])
        story.say(f"{issue['identifier']} {issue['title']} — {issue['state']['name']}")
        for attachment in issue["attachments"]:
            story.say(f"   attachment: {attachment['title']} ({attachment.get('subtitle') or ''}) {attachment['url']}")
        links = store.links_for_issue(Ref("linear", issue["id"]))
        story.say(f"   linked tickets in syncd's store: {', '.join('#' + r.ticket.id for r in links) or 'none'}")
    sdk = pg.github_issue("totp")
    story.say(
        f"{sdk.repo.full_name}#{sdk.number} {sdk.title} — {sdk.state} ({sdk.state_reason}), "
        f"repository {sdk.repo.visibility}"
    )
    story.say(f"   syncd comments: {len(pg.github_comment_bodies('totp'))} (one, edited in place)")
    for short in ("gdpr", "saml"):
        jira_issue = story.jira.get(seed.jira_keys[short])
        story.say(f"{jira_issue.key} {jira_issue.summary} — {jira_issue.status}")
        for link in jira_issue.remotelinks:
            story.say(f"   remote link: {link['object']['title']} → {link['object']['url']}")
    counts = pg.sandbox.counts()
    total = sum(sum(c.values()) for c in counts.values())
    story.say(
        f"\nAPI requests served by the sandbox in all: {total} ("
        + ", ".join(f"{name} {sum(c.values())}" for name, c in counts.items())
        + ")"
    )
