"""``syncd demo`` agrees with itself: its output is parsed and checked against itself.

The demo runs once for every registered helpdesk that offers the story
(against the sandbox, with the story's own clock); each test reads one
thing the story says and checks that the rest of the output says the same:
the timeline runs forward, every ticket and issue the story names is in the
closing lists, an engineer who takes an issue is its owner in the notes, a
handoff's time is the time between the flag and the link, an idle cycle
reports nothing new, and the cycle lines speak plainly. Told with each
helpdesk, the story is the same: the same steps, and the same events but
for a ticket the helpdesk does not close for good.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.demo import offset_text, run_demo, story_helpdesk
from syncd.sandbox.runner import FAKES, STORY_HELPDESKS
from syncd.sandbox.world import HelpdeskWorld, world_class

ISSUE_KEY = r"(?:[A-Z]+-\d+|[\w.-]+/[\w.-]+#\d+)"
# The story's first moment (a Tuesday evening in Berlin), not the machine's: the
# story's clock runs from here. Only the ``syncd link`` command run beside the
# story writes the machine's time, which the timeline places at the story's moment.
START = datetime(2026, 12, 1, 21, 50, tzinfo=timezone.utc)


TOLD: dict[str, str] = {}  # helpdesk -> the story as told with it (each told once per test run)


def told(helpdesk: str) -> str:
    if helpdesk not in TOLD:
        out = io.StringIO()
        assert run_demo(out=out, start=START, helpdesk=helpdesk) == 0
        TOLD[helpdesk] = out.getvalue()
    return TOLD[helpdesk]


@pytest.fixture(scope="module", params=STORY_HELPDESKS)
def text(request) -> str:
    return told(request.param)


def section(text: str, title: str) -> list[str]:
    """The lines under a ``title`` line and its rule, up to the next blank line."""
    lines = text.split(f"\n{title}")[1].splitlines()[2:]
    return lines[: lines.index("")] if "" in lines else lines


def story_lines(text: str) -> list[str]:
    """The numbered steps of the story ("7. Ada (engineer): takes ENG-8 …")."""
    body = text.split("\nTimeline")[0]
    return [line for line in body.splitlines() if re.match(r"\d+\. ", line)]


def seconds(offset: str) -> int:
    m = re.fullmatch(r"\+(?:(\d+)d )?\s*(\d+):(\d\d):(\d\d)", offset.strip())
    assert m, offset
    days, h, mi, s = (int(g or 0) for g in m.groups())
    return ((days * 24 + h) * 60 + mi) * 60 + s


def timeline(text: str) -> list[tuple[int, str]]:
    out = []
    for line in section(text, "Timeline"):
        m = re.match(r"(\+(?:\d+d )?\s*\d+:\d\d:\d\d)  (.*)", line)
        assert m, line
        out.append((seconds(m.group(1)), m.group(2)))
    return out


def test_offsets_are_written_plainly():
    assert offset_text(timedelta(0)) == "+ 0:00:00"
    assert offset_text(timedelta(minutes=21, seconds=4)) == "+ 0:21:04"
    assert offset_text(timedelta(days=5, minutes=43, seconds=12)) == "+5d  0:43:12"
    assert offset_text(timedelta(seconds=-3)) == "+ 0:00:00"


def test_the_timeline_never_goes_back(text):
    events = timeline(text)
    assert len(events) > 50
    times = [t for t, _ in events]
    assert times[0] == 0 and all(t >= 0 for t in times)
    assert times == sorted(times), [e for e, f in zip(events, events[1:]) if f[0] < e[0]]
    # The link the support lead made from the command line sits where the story made it.
    cli = next(t for t, what in events if what.endswith("(cli)"))
    assert 0 < cli < events[-1][0]


def test_every_ticket_and_issue_the_story_names_is_in_the_closing_lists(text):
    steps = "\n".join(story_lines(text))
    tickets = set(re.findall(r"(?<!\S)#(\d+)\b", steps))  # not owner/repo#3
    issues = set(re.findall(ISSUE_KEY, steps))
    assert tickets and issues
    closing_tickets = {
        m.group(1) for line in section(text, "Final state of the tickets") if (m := re.match(r"#(\d+) ", line))
    }
    closing_issues = {
        line.split(" ")[0] for line in section(text, "Final state of the issues") if not line.startswith(" ")
    }
    assert tickets <= closing_tickets, tickets - closing_tickets
    assert issues <= closing_issues, issues - closing_issues


def test_an_engineer_who_takes_an_issue_is_its_owner_in_the_notes(text):
    taken = [
        (m.group(1), m.group(2))
        for line in story_lines(text)
        if (m := re.search(rf"\d+\. (\w+) \(engineer\): takes ({ISSUE_KEY})", line))
    ]
    assert taken
    for who, key in taken:
        owners = re.findall(rf"{re.escape(key)} moved from [^\n]* \(owner: ([^)]+)\)", text)
        assert owners and all(owner.startswith(who) for owner in owners), (key, owners)


def test_a_handoff_lasts_from_the_flag_to_the_link(text):
    """The review's handoff time is the time between the story's flag and link of the ticket."""
    rows = re.findall(
        r"#(\d+) +\w+ +[\w ]+?\s+\S+ \S+ UTC\s+(\d+)h (\d+)m\s+flagged (\S+ \S+) UTC, handed over (\S+ \S+) UTC",
        text.split("Handoffs (")[1],
    )
    assert rows
    events = timeline(text)
    for ticket, hours, minutes, flagged, handed in rows:
        age = timedelta(hours=int(hours), minutes=int(minutes))
        span = datetime.fromisoformat(handed) - datetime.fromisoformat(flagged)  # the report's times, in UTC
        assert abs(span - age) < timedelta(minutes=1)
        flag = next(t for t, what in events if what.startswith(f"#{ticket}: follow-up stage"))
        link = next(t for t, what in events if re.match(rf"#{ticket} linked to ", what))
        assert abs(span.total_seconds() - (link - flag)) < 60, (ticket, span, link - flag)


def test_the_idle_cycle_reports_nothing_new_and_counts_syncds_own_writes_apart(text):
    idle = text.split("idle cycle:")[1].splitlines()[0]
    assert idle.startswith(" nothing new;") and "nothing to write" in idle
    assert re.search(r"\d+ of syncd's own updates came back \(not news\)", idle)
    first = text.split("syncd looks for changes:")[1].splitlines()[0]
    assert first.startswith(" changed: ") and "came back" not in first  # the first run: all of it is news


def test_cycle_lines_are_plain_words(text):
    cycles = [line for line in text.splitlines() if "↻" in line]
    assert len(cycles) > 10
    for line in cycles:
        assert not re.search(r"\d+/\d+ changed|delivered \d|dead \d|failed \d|request\(s\)", line), line
        assert re.search(r"\(\d+ API calls\)$", line), line
    timeline_text = "\n".join(what for _, what in timeline(text))
    for internal in ("owner_gap", "handoff_rejected", "promise_broken", "issue_state", "delivered "):
        assert internal not in timeline_text


def events(text: str) -> list[str]:
    """What syncd saw and decided, in the timeline (not what it wrote), without the moments of the story."""
    out = []
    for _, what in timeline(text):
        if not what.startswith("wrote "):
            out.append(re.sub(r", made \w{3} \d\d \w{3} \d{4} \d\d:\d\d \w+", "", what))
    return out


def test_the_story_is_the_same_with_every_helpdesk_that_offers_it():
    """Same steps by the same people, same sections, same events. The one difference allowed: a
    ticket the story solves, where the helpdesk does not close it for good (it reopens on request),
    is followed up itself."""
    first, *others = STORY_HELPDESKS
    base = told(first)
    assert others, "a second helpdesk offers the story"
    for helpdesk in others:
        text = told(helpdesk)
        assert people(text) == people(base), helpdesk
        for title in ("\nTimeline", "\nFinal state of the tickets", "\nFinal state of the issues", "API requests"):
            assert title in text, (helpdesk, title)
        world = world_class(FAKES[helpdesk])
        assert world is not None and issubclass(world, HelpdeskWorld)
        solved = set(re.findall(r"solves (#\d+)", "\n".join(story_lines(text))))
        assert solved
        differs = set() if world.closes_for_good else solved
        assert without(events(text), differs) == without(events(base), differs), helpdesk
        if differs:
            assert any(e.startswith(tuple(f"{t}: every linked issue is closed" for t in differs)) for e in events(text))


def people(text: str) -> list[str]:
    """Who acts in each step of the story."""
    return [line.split(". ", 1)[1].split(":")[0] for line in story_lines(text)]


def without(seen: list[str], tickets: set[str]) -> Counter[str]:
    """The events, counted, but for those about ``tickets`` ("#2: ...")."""
    return Counter(e for e in seen if e.split(":")[0] not in tickets)


def test_the_story_is_told_with_the_helpdesk_that_offers_it():
    assert story_helpdesk(None) == STORY_HELPDESKS[0] == "zendesk"  # the first by the registry's order
    assert "intercom" in STORY_HELPDESKS
    with pytest.raises(ValueError, match=f"choose from {', '.join(STORY_HELPDESKS)}$"):
        story_helpdesk("nosuch")


def test_demo_refuses_an_unknown_helpdesk_in_one_line():
    result = CliRunner().invoke(main, ["demo", "--helpdesk", "nosuch"])
    assert result.exit_code == 2
    assert f"--helpdesk nosuch: no such helpdesk; choose from {', '.join(STORY_HELPDESKS)}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("helpdesk", STORY_HELPDESKS)
def test_make_demo_prints_the_story_and_no_log_lines(helpdesk):
    """``syncd demo`` (what ``make demo`` runs): the story on stdout, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    args = ["demo"] if helpdesk == STORY_HELPDESKS[0] else ["demo", "--helpdesk", helpdesk]
    done = subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "idle cycle: nothing new" in done.stdout and "Final state of the issues" in done.stdout
    assert "Seeded: 20 tickets from 4 organisations in " in done.stdout
