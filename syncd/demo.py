"""``syncd demo``: a handoff story played against the sandbox.

The sandbox (the registered services' fakes on loopback ports) is seeded
with a small support desk and product teams (:mod:`syncd.sandbox.seed`). The
story is told in roles, not services: the helpdesk, the tracker the seeded
tickets already name, a tracker whose issues anyone can read and a second
tracker a ticket may need as well (:mod:`syncd.sandbox.world`); each service's
part does the acts and shows the records in its own words. The people act
through the services' public APIs, as they would in the real tools; syncd
runs its cycles in between; then the timeline of what syncd saw and wrote,
and the final state of every ticket and issue the story named, are printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from mappings.escaping import shown
from mappings.files import EXAMPLES
from syncd.engine import CycleReport
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import HELPDESKS, NAMES, STORY_HELPDESKS
from syncd.sandbox.seed import SeedResult, customer_email
from syncd.sandbox.world import TrackerWorld


class Story:
    def __init__(self, pg: Playground, out: TextIO, clock: DemoClock | None = None):
        if pg.seed is None:
            raise ValueError("the demo plays on a seeded sandbox")
        linked = pg.tracker_in_role("linked")
        if linked is None:
            raise ValueError("the demo needs the tracker that the seeded tickets name")
        self.pg = pg
        self.seed: SeedResult = pg.seed
        self.desk = pg.desk
        self.linked: TrackerWorld = linked
        self.public = pg.tracker_in_role("public")
        self.second = pg.tracker_in_role("second")
        self.handoff: dict[str, int] = {}  # the handoff chapter's tickets, once played
        self.out = out
        self.clock = clock or DemoClock()
        self.app = pg.app(clock=self.clock)
        self.t0 = time.monotonic()
        self.chapter = 0
        # What the story named, in the order it did: the closing lists show each.
        self.tickets_named: list[Any] = []
        self.issues_named: list[tuple[TrackerWorld, str]] = []
        self.closed: list[Any] = []  # tickets the helpdesk closed for good
        # Events written by a command run beside the story (``syncd link``) carry the
        # machine's time; the timeline places them at the story's moment: (first id, last id, shift).
        self.shifts: list[tuple[int, int, timedelta]] = []

    # -- naming things ----------------------------------------------------------------------

    def name(self, kind: str) -> str:
        """A service's name as people read it."""
        return NAMES.get(kind, kind)

    @property
    def helpdesk_name(self) -> str:
        return self.name(self.desk.kind)

    def ticket(self, ticket_id: Any) -> str:
        """A ticket as the story names it ("#21"), remembered for the closing list."""
        if ticket_id not in self.tickets_named:
            self.tickets_named.append(ticket_id)
        return self.desk.ticket_word(ticket_id)

    def issue(self, tracker: TrackerWorld, short_or_key: str) -> str:
        """An issue's key as the story names it, remembered for the closing list."""
        key = tracker.key(short_or_key)
        if (tracker, key) not in self.issues_named:
            self.issues_named.append((tracker, key))
        return key

    # -- telling -------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def step(self, who: str, text: str) -> None:
        self.clock.jump(timedelta(minutes=1))  # people take a moment between acts
        self.chapter += 1
        self.say(f"\n{self.chapter}. {who}: {text}")

    def cycle(self, label: str = "syncd looks for changes") -> None:
        self.clock.jump(timedelta(minutes=1))
        before = self.pg.sandbox.total_requests()
        first_event = self.app.store.last_event_id()
        report = self.app.engine.cycle()
        spent = self.pg.sandbox.total_requests() - before
        self.say(f"   ↻ {label}: {self.in_words(report)} ({spent} API calls)")
        for event in self.app.store.events_since(first_event):
            if event.kind in ("delivered",):
                continue
            self.say(f"     · {event.summary}")

    def in_words(self, report: CycleReport) -> str:
        """A cycle's report for a support lead: what people changed, what came back of syncd's own, what it wrote."""
        changes, echoes, problems = [], 0, []
        for poll in report.polls:
            what = "ticket" if poll.connector == self.desk.kind else "issue"
            news = poll.changed - poll.echoes
            echoes += poll.echoes
            if news:
                changes.append(f"{news} {what}{'s' if news != 1 else ''} in {self.name(poll.connector)}")
            if poll.error:
                problems.append(f"could not read {self.name(poll.connector)}: {poll.error}")
        parts = [("changed: " + ", ".join(changes)) if changes else "nothing new"]
        if echoes:
            parts.append(f"{echoes} of syncd's own updates came back (not news)")
        delivery = report.delivery
        wrote = delivery.done if delivery else 0
        parts.append(f"wrote {wrote} update{'s' if wrote != 1 else ''}" if wrote else "nothing to write")
        if delivery and delivery.failed:
            parts.append(f"{delivery.failed} to try again")
        if delivery and delivery.dead:
            parts.append(f"gave up on {delivery.dead}")
        for name in report.rate_limited:
            parts.append(f"{self.name(name)} asked syncd to wait; nothing sent there until it allows")
        return "; ".join(parts + problems)

    def run_cli(self, *args: str) -> None:
        """Run the real ``syncd`` command, as an admin would in a shell."""
        first_event = self.app.store.last_event_id()
        self.app.close()  # the command takes the store's lock for its write
        shift = self.clock() - datetime.now(timezone.utc)
        result = subprocess.run(
            [sys.executable, "-m", "syncd", *args], env=self.pg.cli_env(), capture_output=True, text=True, timeout=60
        )
        self.say(f"   $ syncd {' '.join(args)}")
        for line in (result.stdout + result.stderr).strip().splitlines():
            self.say(f"     {line}")
        if result.returncode != 0:
            raise RuntimeError(f"syncd {' '.join(args)} exited {result.returncode}")
        self.app = self.pg.app(clock=self.clock)
        self.shifts.append((first_event, self.app.store.last_event_id(), shift))

    def story_time(self, event_id: int, at: datetime) -> datetime:
        """When an event happened in the story (a command run beside it wrote the machine's time)."""
        for first, last, shift in self.shifts:
            if first < event_id <= last:
                return at + shift
        return at


class DemoClock:
    """The story's time: from ``start`` (default: now) as real time passes, plus however far the
    story has jumped ahead ("three business days pass")."""

    def __init__(self, start: datetime | None = None) -> None:
        self.offset = timedelta(0)
        self.start = start
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        if self.start is None:
            return datetime.now(timezone.utc) + self.offset
        return self.start + timedelta(seconds=time.monotonic() - self.began) + self.offset

    def jump(self, delta: timedelta) -> None:
        self.offset += delta


def example_mappings(workdir: Path) -> Path:
    """The shipped example mapping set, copied as an admin would start from it."""
    target = workdir / "mappings"
    shutil.copytree(EXAMPLES, target)
    return target


def fit_example_fields(directory: Path, seed: SeedResult) -> dict[str, Any]:
    """Make the copied examples name the seeded helpdesk's fields, as its admin would.

    The examples name the sandbox's custom fields (the stage, what is still
    missing, the severity) by the ids one helpdesk gives them; another names
    them otherwise (by name, say). Each reference the examples make to one of
    these fields is rewritten to the seeded helpdesk's own; the answer is what
    was replaced by what (empty when the examples already fit)."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        stages = data.get("stages") or {}
        if "field" in stages:
            found[str(stages["field"])] = seed.stage_field_id
        if "missing_field" in stages:
            found[str(stages["missing_field"])] = seed.missing_field_id
        for route in (data.get("routes") or {}).values():
            severity = route.get("severity") if isinstance(route, dict) else None
            if isinstance(severity, dict) and "field" in severity:
                found[str(severity["field"])] = seed.severity_field_id
    replaced = {old: new for old, new in found.items() if str(new) != old and new not in (0, "")}
    if not replaced:
        return {}
    for path in sorted(directory.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        for old, new in replaced.items():
            value = json.dumps(new)
            text = text.replace(f'"{old}"', value)
            text = re.sub(rf"(=\s*){re.escape(old)}\b", lambda m: m.group(1) + value, text)
        path.write_text(text, encoding="utf-8")
    return replaced


def story_helpdesk(kind: str | None) -> str:
    """The helpdesk to play the story with: ``kind``, or the first registered one that offers it."""
    if kind is None:
        if not STORY_HELPDESKS:
            raise ValueError("no registered helpdesk's sandbox part offers the demo's story")
        return STORY_HELPDESKS[0]
    if kind not in STORY_HELPDESKS:
        offered = ", ".join(STORY_HELPDESKS) or "none"
        known = "its sandbox part does not offer the demo's story" if kind in HELPDESKS else "no such helpdesk"
        raise ValueError(f"--helpdesk {kind}: {known}; choose from {offered}")
    return kind


def run_demo(
    *, keep: bool = False, out: TextIO = sys.stdout, helpdesk: str | None = None, start: datetime | None = None
) -> int:
    """Play the story; ``start``: the story's first moment (default: now)."""
    kind = story_helpdesk(helpdesk)
    workdir = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    clock = DemoClock(start)
    try:
        with Playground(workdir, clock=clock, mappings=example_mappings(workdir), helpdesk=kind) as pg:
            if pg.seed is not None:  # (the story refuses an unseeded sandbox)
                fit_example_fields(workdir / "mappings", pg.seed)
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
    pg, seed, desk, linked = story.pg, story.seed, story.desk, story.linked
    public, second = story.public, story.second
    tickets = seed.tickets
    story.say(
        "syncd demo — fake services on loopback: "
        + ", ".join(f"{story.name(name)} {pg.sandbox.url(name)}" for name in (desk.kind, *pg.trackers))
    )
    story.say(
        f"Seeded: {len(tickets)} tickets from {len(seed.organizations)} organisations in {story.helpdesk_name}; "
        + ", ".join(
            f"{story.name(kind)} {len(part.issues)} issues ({part.where})" for kind, part in seed.trackers.items()
        )
        + "."
    )

    story.step(
        "syncd",
        "first run: reads the ticket and issue feeds; agents had already named issues "
        "in the 'Linked issue' field of some tickets, and flagged some for product",
    )
    story.cycle()

    handoff = play_handoff(story)

    search_ticket, search_issue = story.ticket(tickets["search"]), story.issue(linked, "search")
    url = linked.view(search_issue).url
    story.step("Priya (support agent)", f"pastes {url} into an internal note on ticket {search_ticket}")
    desk.agent_note(tickets["search"], f"Engineering tracks this as {url} — linking so we hear when it moves.")
    story.cycle()

    saml_ticket, sso_issue = story.ticket(tickets["saml"]), story.issue(linked, "sso")
    story.step("Tomás (support lead)", f"links ticket {saml_ticket} to {sso_issue} from the command line")
    story.run_cli("link", str(tickets["saml"]), sso_issue)

    sdk_key = saml_key = ""
    if public is not None:
        twofa_ticket, sdk_key = story.ticket(tickets["2fa"]), story.issue(public, "totp")
        sdk = public.view(sdk_key)
        story.step(
            "Mei (support agent)",
            f"pastes {sdk.url} — an issue in the PUBLIC {sdk.place.removesuffix(' (public)')} — "
            f"into an internal note on ticket {twofa_ticket}",
        )
        desk.agent_note(tickets["2fa"], f"The SDK team has this: {sdk.url}", agent="Mei Chen")
    if second is not None:
        gdpr_ticket, gdpr_key = story.ticket(tickets["gdpr"]), story.issue(second, "gdpr")
        second_name = story.name(second.kind)
        story.step("Priya", f"notes that ticket {gdpr_ticket} is {second_name} issue {gdpr_key}")
        desk.agent_note(tickets["gdpr"], f"Platform tracks this as {gdpr_key}.")
        saml_key = story.issue(second, "saml")
        story.step(
            "Tomás",
            f"adds that ticket {saml_ticket} also needs {second_name} issue {saml_key} "
            f"(it is now linked to a {story.name(linked.kind)} and a {second_name} issue)",
        )
        desk.agent_note(
            tickets["saml"], f"Needs the platform fix too: {second.view(saml_key).url}", agent="Tomás Ortega"
        )
    story.cycle()
    if public is not None:
        story.say(
            f"   The context comment syncd keeps on {sdk_key} (public: no customer, only a reference and a count):"
        )
        for body in public.view(sdk_key).comments:
            say_rendered(story, body, story.app.engine.trackers[public.kind].text_format)
    if second is not None:
        for line in second.view(gdpr_key).links:
            story.say(f"   On {gdpr_key}, the {line}")

    moves = f"; in {story.name(second.kind)}, {saml_key} goes to In Progress" if second is not None else ""
    story.step("Ada (engineer)", f"moves {search_issue} to In Progress{moves}")
    linked.move(search_issue, "In Progress", by="Ada Novak")
    if second is not None:
        second.move(saml_key, "In Progress")
    story.step("Priya", f"tells the customers on {search_ticket} and {saml_ticket} and sets both to pending")
    for ticket in (tickets["search"], tickets["saml"]):
        desk.agent_note(ticket, "Our engineers are working on it; we will update you as soon as it ships.", public=True)
        desk.agent_set_status(ticket, "pending")
    story.cycle()

    waits = f" ({saml_ticket} still waits on {saml_key})" if second is not None else ""
    story.step("Ada", f"ships the fix: {search_issue} → Done; Sam closes {sso_issue} as Done too{waits}")
    linked.move(search_issue, "Done", by="Ada Novak")
    linked.move(sso_issue, "Done", by="Sam Okafor")
    story.cycle()

    if second is not None or public is not None:
        done = []
        if second is not None:
            done.append(
                f"in {story.name(second.kind)}, {saml_key} → Done: now every issue {saml_ticket} waits on is closed"
            )
            second.move(saml_key, "Done")
        if public is not None:
            done.append(f"in {story.name(public.kind)}, {sdk_key} is closed as completed")
            public.move(sdk_key, "closed (completed)", by="Ada Novak")
        story.step("Engineers", "; ".join(done))
        story.cycle()

    play_promises(story, handoff)
    story.handoff = handoff

    story.step("syncd", "runs again with nothing new to do")
    story.cycle("idle cycle")

    story.step("Tomás", "prints the review for this week's support/product meeting (syncd report)")
    show_report(story)


def play_handoff(story: Story) -> dict[str, int]:
    """One ticket through every stage: New, Needs context, Assigned, Waiting, Resolved, Follow-up."""
    seed, desk, linked = story.seed, story.desk, story.linked
    subject = "Route planner drops the last stop on long routes"
    ticket = desk.customer_opens(
        subject,
        "When a route has more than 20 stops, the last stop is not shown.",
        customer=customer_email("hannah"),
        agent="Priya Raman",
        organization="Northwind Logistics",
    )
    name = story.ticket(ticket)
    story.step("Hannah (Northwind, customer)", f"opens ticket {name}: {subject!r}")
    story.step(
        "Priya", f"flags {name} for product (tag '{seed.escalation_tag}'); it has no severity, steps or impact yet"
    )
    desk.agent_set_tags(ticket, [seed.escalation_tag])
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step(
        "Priya", "adds the steps, what should happen and who is affected in an internal note, and sets Severity to sev2"
    )
    desk.agent_note(
        ticket,
        "Steps: plan a route with 21 stops and open it in the driver app.\n"
        "Expected: all 21 stops are listed.\n"
        "Impact: every Northwind dispatcher with long routes is affected; drivers miss deliveries.",
    )
    desk.agent_set_field(ticket, seed.severity_field_id, "sev2")
    story.cycle()
    [link] = story.app.store.links_for_ticket(Ref(desk.kind, str(ticket)))
    issue = linked.view(link.issue.id)
    key = story.issue(linked, issue.key)
    show_handoff_fields(story, ticket)
    story.say(f"   {key} as created in {story.name(linked.kind)} (the handoff record):")
    say_rendered(story, issue.description, story.app.engine.trackers[linked.kind].text_format)

    other = desk.customer_opens(
        "Last delivery stop missing",
        "Our drivers do not see the final stop.",
        customer=customer_email("jonas"),
        agent="Priya Raman",
        organization="Acme Health",
    )
    other_name = story.ticket(other)
    story.step("Jonas (Acme Health, customer)", f"reports the same problem in ticket {other_name}")
    story.step("Priya", f"flags {other_name} too, and notes it is {key}: linked, no second issue")
    desk.agent_set_tags(other, [seed.escalation_tag])
    desk.agent_note(other, f"Same problem as {name}, tracked as {key}.")
    story.cycle()
    show_demand(story, key)

    story.step("Ada (engineer)", f"takes {key}: assigns it to herself and starts it")
    linked.take(key, by="Ada Novak")
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step("Ada", f"ships the fix: {key} → Done")
    linked.move(key, "Done", by="Ada Novak")
    story.cycle()
    show_handoff_fields(story, ticket)

    story.step("Priya", f"tells Hannah on {name} that the fix is live (a public reply): the promise is kept")
    desk.agent_note(
        ticket, "The fix for long routes is live; all stops show again. Sorry for the trouble!", public=True
    )
    story.cycle()
    show_handoff_fields(story, ticket)
    return {"ticket": ticket, "other": other}


def play_promises(story: Story, handoff: dict[str, int]) -> None:
    """The clock breaks a promise nobody kept; a closed ticket gets a follow-up ticket (or, where the
    helpdesk reopens closed tickets, is followed up itself)."""
    seed, desk, linked = story.seed, story.desk, story.linked
    csv = seed.tickets["csv"]
    csv_name = story.ticket(csv)
    if desk.closes_for_good:
        closes = f"{story.helpdesk_name}'s automation closes it (closed tickets cannot be reopened)"
    else:
        closes = f"{story.helpdesk_name} closes it (a closed ticket there reopens on request)"
    story.step("Tomás", f"solves {csv_name}; {closes}")
    desk.agent_set_status(csv, "solved", agent="Tomás Ortega")
    desk.automation_closes(csv)
    if desk.closes_for_good:
        story.closed.append(csv)
    story.cycle()
    csv_issue = story.issue(linked, "csv")
    story.step("Ravi (engineer)", f"ships {csv_issue}, the issue {csv_name} waited on")
    linked.move(csv_issue, "Done", by="Ravi Patel")
    story.cycle()
    follow_ups = desk.follow_ups()
    for follow_up in follow_ups:
        story.say(f"   follow-up ticket {story.ticket(follow_up.id)}: {follow_up.subject}")
    if not follow_ups and desk.closes_for_good:
        story.say(f"   no follow-up ticket for {csv_name}: syncd opens one only for a promise that comes due")
    elif not follow_ups:
        story.say(
            f"   no follow-up ticket for {csv_name}: {story.helpdesk_name} reopens a closed ticket, "
            f"so syncd follows up on {csv_name} itself (now {desk.view(csv).status})"
        )

    other = story.ticket(handoff["other"])
    story.step("time", f"three business days pass; nobody has replied on {other}")
    story.clock.jump(timedelta(days=5))
    story.cycle()
    tags = [t for t in desk.view(handoff["other"]).tags if "promise" in t]
    story.say(f"   {other} tags now include: {', '.join(tags) or '—'}")


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
    seed, desk = story.seed, story.desk
    stage = desk.field(ticket, seed.stage_field_id) or "—"
    missing = desk.field(ticket, seed.missing_field_id) or ""
    tags = [t for t in desk.view(ticket).tags if t.startswith("syncd_stage_")]
    story.say(
        f"   {desk.ticket_word(ticket)} in {story.helpdesk_name} — Follow-up stage: {stage}; "
        f"stage tag: {', '.join(tags) or '—'}"
    )
    if missing.strip():
        story.say("   'Handoff: still missing' field:")
        for line in missing.splitlines():
            story.say(f"     {line}")


def show_demand(story: Story, key: str) -> None:
    for body in story.linked.view(key).comments:
        if "Support demand" in body:
            story.say(f"   The demand comment syncd keeps on {key} (edited in place):")
            say_rendered(story, body, story.app.engine.trackers[story.linked.kind].text_format)


def say_rendered(story: Story, text: str, fmt: str) -> None:
    """A comment or description as its tracker shows it: no escapes, no hidden markers."""
    for line in shown(text, fmt).splitlines():
        if line.strip():
            story.say(f"     │ {line.rstrip()}")


def offset_text(delta: timedelta) -> str:
    """A time in the story, from its start: "+0:03:00", "+5d 00:43:12"."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"+{days}d {clock:>8}" if days else f"+{clock:>8}"


def show_timeline(story: Story) -> None:
    story.say("\nTimeline (syncd's event history, from the first run)")
    story.say("-" * 78)
    events = story.app.store.events_since(0, limit=10000)
    times = [story.story_time(e.id, e.at) for e in events]
    start = times[0] if times else None
    for event, at in zip(events, times):
        offset = offset_text(at - start) if start else offset_text(timedelta(0))
        summary = f"wrote {event.summary}" if event.kind == "delivered" else event.summary
        story.say(f"{offset}  {textwrap.shorten(summary, 126, placeholder=' …')}")


def show_final_state(story: Story) -> None:
    pg, store, desk = story.pg, story.app.store, story.desk
    seed = story.seed
    field_id = seed.linked_issue_status_field_id
    story.say("\nFinal state of the tickets in the story")
    story.say("-" * 78)
    for ticket_id in story.tickets_named:
        ticket = desk.view(ticket_id)
        story.say(f"{desk.ticket_word(ticket.id)} {ticket.subject}")
        story.say(f"   status: {ticket.status}   tags: {', '.join(ticket.tags)}")
        if ticket.id in story.closed:
            story.say(f"   (closed in {story.helpdesk_name}: syncd writes nothing more to it)")
        story.say(f"   Linked issue status: {desk.field(ticket.id, field_id) or '—'}")
        for body in ticket.notes:
            if "syncd:" in body:
                first, *rest = body.splitlines()
                story.say(f"   internal note: {textwrap.shorten(first, 100, placeholder=' …')}")
                for line in rest:
                    if line.startswith("- "):  # which issues are closed, or still awaited
                        story.say(f"                  {line}")
    story.say("\nFinal state of the issues in the story")
    story.say("-" * 78)
    for tracker, key in story.issues_named:
        issue = tracker.view(key)
        place = f", {issue.place}" if tracker is story.public else ""
        story.say(f"{issue.key} {issue.title} — {issue.state}{place}")
        for line in issue.links:
            story.say(f"   {line}")
        written = [c for c in issue.comments if "syncd:" in c]
        if written:
            story.say(f"   comments syncd wrote there: {len(written)}")
        ref = Ref(tracker.kind, issue.id)
        links = store.links_for_issue(ref)
        story.say(
            f"   linked tickets in syncd's store: {', '.join(desk.ticket_word(r.ticket.id) for r in links) or 'none'}"
        )
    counts = pg.sandbox.counts()
    total = sum(sum(c.values()) for c in counts.values())
    story.say(
        f"\nAPI requests served by the sandbox in all: {total} ("
        + ", ".join(f"{story.name(name)} {sum(c.values())}" for name, c in counts.items())
        + ")"
    )
