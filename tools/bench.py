"""``make bench``: what syncd costs, measured against the sandbox.

For each size (1,000 and 10,000 links) it builds a sandbox whose tickets
already name their issue in the "Linked issue" field, then runs the real
``syncd once`` command as a child process and reports, from the sandbox's
own request counters and the child's resource usage:

- the first sync (links made, notes and attachments written);
- the cycle after it, which reads the echoes of those writes;
- an idle cycle: requests per feed (the goal is 1, flat across sizes; on
  GitHub one conditional request per repository, answered 304);
- a busy cycle: 1 % of the Linear issues moved, a few GitHub and Jira issues changed;
- changes per second through poll → commit (tickets and issues), in process;
- peak memory (max RSS) of the syncd process.

GitHub and Jira carry as many links as Linear (each ticket is also linked
to one GitHub and one Jira issue, 10 tickets per issue). Those links are
written into the store directly after the first sync, because making them
through the API would triple the first sync's time and measure nothing the
Linear links do not; their issues are real, read by the first sync's feeds,
and the idle and busy cycles run against them.

``--mix`` measures instead the first sync of tickets that name, in turn, a
Linear, a GitHub and a Jira issue (a third each, 10 tickets per issue), all
links made through the APIs: GitHub issues named half by their key
(``owner/repo#12`` in the field) and half by a pasted URL
(``…/owner/repo/issues/12`` in a comment); the requests per tracker, and the
cycle after it.

- the planning rate: the same in-process polls less their connectors' time
  in HTTP requests (what syncd itself costs per change), and beside it the
  changes per CPU second of the polling thread (``time.thread_time``), which
  other jobs on a shared machine do not stretch as they stretch the wall clock.

Figures are printed; nothing is asserted. ``--sizes`` picks other sizes
(``--sizes 100000`` runs the issue-13 size: allow an hour or more on a
shared 2-core machine, most of it the first sync's requests); ``--handoff``
turns the handoff on; ``--profile`` runs the two throughput polls under
cProfile and prints the store statements each ran and the top of each
profile; ``--repeat N`` runs the two throughput polls N times (new comments,
the issues moved again) and prints the medians; ``--latency`` times instead a change in the tracker
to its note on the ticket, with and without webhook doorbells
(tools/bench_latency.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, NamedTuple

from connectors.github.fake import GITHUB_REPOSITORIES, GitHubFake
from connectors.jira.fake import JIRA_PROJECTS, JiraFake
from connectors.linear.fake import LinearFake
from connectors.zendesk.fake import ZendeskFake
from connectors.zendesk.seed import ZendeskWorld
from syncd.logs import configure_logging
from syncd.records import Link, Ref
from syncd.sandbox.harness import Playground
from syncd.sandbox.seed import SeedResult
from syncd.sandbox.server import Sandbox

TICKETS_PER_ISSUE = 10
# GitHub and Jira: the tickets of one Linear issue share one GitHub and one
# Jira issue, so their status fields agree and a change is one bulk update.
TICKETS_PER_OTHER_ISSUE = TICKETS_PER_ISSUE


@dataclass
class BenchSeed:
    """What the bench's sandbox holds, for its cycles (the Playground's config reads sandbox.seed)."""

    tickets: list[int]
    issues: list[str]  # identifiers
    github_issues: list[int]  # ids
    jira_issues: list[str]  # ids
    stage_field: int
    github: GitHubFake
    jira: JiraFake


HANDOFF_MAPPINGS = {
    "routes.toml": '[routes.all]\ntracker = "linear"\nteam = "ENG"\npromises = "std"\n',
    "promises.toml": '[promises.std]\nupdate_within = "2 days"\ntriage_sla = "4 hours"\n',
}


def handoff_mappings(workdir: Path, stage_field: int) -> Path:
    """A small mapping set that turns the handoff on: stages, one route, promises and a triage SLA."""
    directory = workdir / "mappings"
    directory.mkdir()
    for name, text in HANDOFF_MAPPINGS.items():
        (directory / name).write_text(text)
    (directory / "stages.toml").write_text(f'[stages]\nfield = {stage_field}\ntag_prefix = "syncd_stage_"\n')
    return directory


def build(n_links: int) -> tuple[Sandbox, BenchSeed]:
    # Budgets far above any plan's, so that the figures count requests rather
    # than the rate limiter's waits (which syncd obeys: see docs/benchmarks.md).
    # Tickets arrive one a second, ending a minute ago, as an account fills over time
    # (not thousands in one second, which no time-based export pages through: see
    # docs/benchmarks.md); from the first sync on, the fake keeps the present.
    opened = datetime.now(timezone.utc) - timedelta(seconds=n_links + 60)
    arrived = [0]
    zendesk = ZendeskFake(limit_per_minute=1_000_000, clock=lambda: opened + timedelta(seconds=arrived[0]))
    linear = LinearFake(requests_per_hour=10_000_000, complexity_per_hour=10_000_000_000)
    linked = zendesk.add_ticket_field("Linked issue", "text")
    status = zendesk.add_ticket_field("Linked issue status", "text")
    stage = zendesk.add_ticket_field("Follow-up stage", "text")
    orgs = [zendesk.add_organization(f"Customer {i:03d}") for i in range(50)]
    people = [
        zendesk.add_user(f"Person {i}", f"p{i}@c{i % 50}.example", organization_id=orgs[i % 50]["id"])
        for i in range(200)
    ]
    linear.add_team("ENG", "Engineering")
    n_issues = max(10, n_links // TICKETS_PER_ISSUE)
    issues = [
        linear.issue(linear.create_issue("ENG", f"Defect {i}", state="Todo"))["identifier"] for i in range(n_issues)
    ]
    tickets = []
    for i in range(n_links):
        person = people[i % len(people)]
        t = zendesk.create_ticket(
            f"Problem report {i}",
            "It does not work as expected.",
            requester_id=person["id"],
            organization_id=person["organization_id"],
            status="open",
            custom_fields={linked["id"]: issues[i % n_issues]},
        )
        tickets.append(t["id"])
        arrived[0] += 1
    zendesk.clock = lambda: datetime.now(timezone.utc)
    # GitHub and Jira issues date from an hour ago: the feeds' overlap windows
    # (minutes) would otherwise re-read every one of them in the idle cycle.
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    github = GitHubFake(rate_limit=10_000_000, clock=lambda: an_hour_ago.timestamp())
    repos = [github.create_repo(name, private=private) for name, private in GITHUB_REPOSITORIES]
    n_other = max(10, n_links // TICKETS_PER_OTHER_ISSUE)
    github_issues = [
        github.create_issue(repos[i % len(repos)], f"Defect {i}", assignee="dev").id for i in range(n_other)
    ]
    github._clock = time.time  # the present from here on
    jira = JiraFake(projects=dict(JIRA_PROJECTS))
    jira_issues = [jira.create_issue(JIRA_PROJECTS[0][0], f"Defect {i}", at=an_hour_ago).id for i in range(n_other)]
    sandbox = Sandbox([zendesk, linear, github, jira])
    # What the Playground's config needs: the helpdesk's two linked-issue fields, named by its part of the world.
    sandbox.seed = SeedResult(
        linked_issue_field_id=linked["id"],
        linked_issue_status_field_id=status["id"],
        stage_field_id=stage["id"],
    )
    sandbox.worlds = {"zendesk": ZendeskWorld(zendesk, "zendesk")}
    return sandbox, BenchSeed(tickets, issues, github_issues, jira_issues, stage["id"], github, jira)


@dataclass
class MixSeed:
    """The tickets of ``--mix``, and the comments that paste GitHub URLs once the sandbox runs."""

    tickets: dict[str, list[int]]  # tracker -> tickets naming one of its issues
    pasted: list[tuple[int, str, int]]  # (ticket, owner/repo, number): a URL to paste in a comment


def build_mix(n_tickets: int) -> tuple[Sandbox, MixSeed]:
    zendesk = ZendeskFake(limit_per_minute=1_000_000)
    linear = LinearFake(requests_per_hour=10_000_000, complexity_per_hour=10_000_000_000)
    linked = zendesk.add_ticket_field("Linked issue", "text")
    status = zendesk.add_ticket_field("Linked issue status", "text")
    person = zendesk.add_user("Person", "p@c.example", organization_id=zendesk.add_organization("Customer")["id"])
    linear.add_team("ENG", "Engineering")
    per_tracker = max(1, n_tickets // 3)
    n_issues = max(1, per_tracker // TICKETS_PER_ISSUE)
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    github = GitHubFake(rate_limit=10_000_000, clock=lambda: an_hour_ago.timestamp())
    repos = [github.create_repo(name, private=True) for name, _ in GITHUB_REPOSITORIES]
    gh = [github.create_issue(repos[i % len(repos)], f"Defect {i}", assignee="dev") for i in range(n_issues)]
    github._clock = time.time
    jira = JiraFake(projects=dict(JIRA_PROJECTS))
    ji = [jira.create_issue(JIRA_PROJECTS[0][0], f"Defect {i}", at=an_hour_ago) for i in range(n_issues)]
    lin = [linear.issue(linear.create_issue("ENG", f"Defect {i}", state="Todo"))["identifier"] for i in range(n_issues)]
    seed = MixSeed({"linear": [], "github": [], "jira": []}, [])
    for i in range(3 * per_tracker):
        tracker, n = ("linear", "github", "jira")[i % 3], (i // 3) % n_issues
        pasted = tracker == "github" and (i // 3) % 2 == 1
        value = {"linear": lin[n], "github": f"{gh[n].repo.full_name}#{gh[n].number}", "jira": ji[n].key}[tracker]
        fields = {} if pasted else {linked["id"]: value}
        t = zendesk.create_ticket(
            f"Problem report {i}", "It does not work.", requester_id=person["id"], status="open", custom_fields=fields
        )
        seed.tickets[tracker].append(t["id"])
        if pasted:
            seed.pasted.append((t["id"], gh[n].repo.full_name, gh[n].number))
    sandbox = Sandbox([zendesk, linear, github, jira])
    sandbox.seed = SeedResult(linked_issue_field_id=linked["id"], linked_issue_status_field_id=status["id"])
    sandbox.worlds = {"zendesk": ZendeskWorld(zendesk, "zendesk")}
    return sandbox, seed


def bench_mix(n_tickets: int, out=sys.stdout) -> dict:
    """The first sync of tickets naming Linear, GitHub and Jira issues, a third each, links made through the APIs."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix=f"syncd-bench-mix-{n_tickets}-"))
    sandbox, seed = build_mix(n_tickets)
    say(
        f"\n== mix: {sum(len(t) for t in seed.tickets.values())} tickets, a third each naming a Linear, GitHub "
        f"and Jira issue ({TICKETS_PER_ISSUE} tickets per issue; GitHub half by key, half by a pasted URL)"
    )
    result: dict = {"tickets": n_tickets}
    try:
        with Playground(workdir, sandbox=sandbox) as pg:
            unpaced(pg)
            web = pg.sandbox["github"].base_url
            for ticket, repo, number in seed.pasted:
                pg.zendesk.add_comment(ticket, f"Same as {web}/{repo}/issues/{number}", public=False)
            pg.sandbox.reset_counts()
            run = run_once(pg)
            first = pg.sandbox.counts()
            result["first_sync"] = first
            say(f"first sync:   {pg.sandbox.total_requests():>6} requests in {run.seconds:6.1f}s (exit {run.code})")
            for name, counts in first.items():
                say(
                    f"              {name}: {sum(counts.values())}: "
                    + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                )
            app = pg.app()
            try:
                linked = {t: 0 for t in seed.tickets}
                for link in app.store.all_links():
                    linked[link.issue.connector] = linked.get(link.issue.connector, 0) + 1
            finally:
                app.close()
            say("              links made: " + ", ".join(f"{k} {v}" for k, v in linked.items()))
            pg.sandbox.reset_counts()
            run = run_once(pg)
            result["next_cycle"] = pg.sandbox.counts()
            say(f"next cycle:   {pg.sandbox.total_requests():>6} requests in {run.seconds:6.1f}s (exit {run.code})")
            for name, counts in pg.sandbox.counts().items():
                say("              " + name + ": " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def link_other_trackers(pg: Playground, seed: BenchSeed) -> int:
    """Each ticket also linked to a GitHub and a Jira issue, written straight into the store."""
    app = pg.app()
    try:
        with app.store.transaction():
            for i, ticket in enumerate(seed.tickets):
                ref = Ref("zendesk", str(ticket))
                app.store.add_link(
                    Link(ref, Ref("github", str(seed.github_issues[i % len(seed.github_issues)])), "bench")
                )
                app.store.add_link(Link(ref, Ref("jira", seed.jira_issues[i % len(seed.jira_issues)]), "bench"))
    finally:
        app.close()
    return 2 * len(seed.tickets)


def unpaced(pg: Playground) -> None:
    """GitHub's content limits (80 comments a minute, 500 an hour) set far above, like
    the fakes' budgets, so that the figures count requests, not the pacing's waits."""
    pg.env["SYNCD_CONNECTORS__GITHUB__COMMENTS_PER_MINUTE"] = "1000000"
    pg.env["SYNCD_CONNECTORS__GITHUB__COMMENTS_PER_HOUR"] = "1000000"


# ``syncd once`` as the child runs it, writing its own peak RSS (VmHWM, KiB) to a file at exit.
# The child's ru_maxrss is not that figure on Linux: an exec keeps the high-water mark of
# the memory it replaces, which is this process's (it holds the fakes, hundreds of MiB at
# 100,000 links) since subprocess spawns with vfork.
_CHILD = """
import atexit, os, sys

def _peak():
    with open("/proc/self/status") as status:
        line = next(ln for ln in status if ln.startswith("VmHWM:"))
    with open(os.environ["SYNCD_BENCH_PEAK"], "w") as out:
        out.write(line.split()[1])

atexit.register(_peak)
sys.argv = ["syncd", *sys.argv[1:]]
from syncd.cli import main
main()
"""


class Run(NamedTuple):
    """One ``syncd once`` child: wall seconds, its own peak RSS (MiB), exit code, and the
    CPU seconds it used (user + system): syncd's own cost, apart from waiting for answers."""

    seconds: float
    rss: float
    code: int
    cpu: float


def run_once(pg: Playground) -> Run:
    """Run ``syncd once`` as a child."""
    peak_file = pg.workdir / "bench-peak-rss"
    peak_file.unlink(missing_ok=True)
    linux = Path("/proc/self/status").exists()
    command = [sys.executable, "-c", _CHILD, "once"] if linux else [sys.executable, "-m", "syncd", "once"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env={**pg.cli_env(), "SYNCD_BENCH_PEAK": str(peak_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        print(err, file=sys.stderr)
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else usage.ru_maxrss / 1024
    return Run(time.perf_counter() - start, peak, proc.returncode, usage.ru_utime + usage.ru_stime)


# A first sync larger than a run's delivery rounds exits 3 (writes left for the next run);
# the bench runs it on until it ends, as a service's next cycles would.
FIRST_SYNC_RUNS = 20


def first_sync(pg: Playground) -> tuple[Run, int]:
    """``syncd once`` until the first sync is done (exit other than 3): the runs summed
    (peak RSS: the highest), and how many runs it took."""
    runs = [run_once(pg)]
    while runs[-1].code == 3 and len(runs) < FIRST_SYNC_RUNS:
        runs.append(run_once(pg))
    total = Run(sum(r.seconds for r in runs), max(r.rss for r in runs), runs[-1].code, sum(r.cpu for r in runs))
    return total, len(runs)


FEEDS = {
    "zendesk": "GET /api/v2/incremental/tickets/cursor",
    "linear": "POST /graphql SyncdIssues",
    "github": "GET /repos/{owner}/{repo}/issues",
    "jira": "POST /rest/api/3/search/jql",
}


def per_feed(counts: dict[str, dict[str, int]]) -> str:
    feeds = ", ".join(f"{name} feed {counts.get(name, {}).get(endpoint, 0)}" for name, endpoint in FEEDS.items())
    return f"{feeds}, total {sum(sum(c.values()) for c in counts.values())}"


def watch_statuses(pg: Playground, service: str) -> list[int]:
    """The HTTP status of every answer ``service`` gives from now on."""
    statuses: list[int] = []
    pg.sandbox[service].listeners.append(lambda endpoint, request, response: statuses.append(response.status))
    return statuses


def bench(n_links: int, out=sys.stdout, *, handoff: bool = False, profile: int = 0, repeat: int = 1) -> dict:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix=f"syncd-bench-{n_links}-"))
    t = time.perf_counter()
    sandbox, seed = build(n_links)
    say(
        f"\n== {n_links} links per tracker (Linear: {len(seed.issues)} issues, {TICKETS_PER_ISSUE} tickets "
        f"each; GitHub and Jira: {len(seed.github_issues)} issues each, {TICKETS_PER_OTHER_ISSUE} tickets "
        f"each); sandbox built in {time.perf_counter() - t:.1f}s"
    )
    result: dict = {"links": n_links, "handoff": handoff}
    if handoff:
        say("              with the handoff on (stages, promises, owner gaps, demand comments)")
    mappings = handoff_mappings(workdir, seed.stage_field) if handoff else None
    try:
        with Playground(workdir, sandbox=sandbox, mappings=mappings) as pg:
            unpaced(pg)
            pg.sandbox.reset_counts()
            run, runs = first_sync(pg)
            first = pg.sandbox.counts()
            result["first_sync"] = {
                "seconds": run.seconds,
                "requests": pg.sandbox.total_requests(),
                "rss": run.rss,
                "cpu": run.cpu,
                "runs": runs,
            }
            say(
                f"first sync:   {pg.sandbox.total_requests():>6} requests in {run.seconds:6.1f}s "
                f"(syncd's CPU {run.cpu:.1f}s), max RSS {run.rss:.0f} MiB, "
                f"{runs} run{'s' if runs > 1 else ''} of syncd once (exit {run.code})"
            )
            for name, counts in first.items():
                say("              " + name + ": " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

            say(f"              + {link_other_trackers(pg, seed)} GitHub and Jira links written into the store")

            pg.sandbox.reset_counts()
            run = run_once(pg)  # sees the echoes of its own writes
            after = result["after_first"] = pg.sandbox.counts()
            say(
                f"cycle after:  {per_feed(after)} ({run.seconds:.2f}s, syncd's CPU {run.cpu:.1f}s, "
                f"max RSS {run.rss:.0f} MiB; the echoes of the first sync's writes)"
            )
            say("              " + ", ".join(f"{k} {v}" for k, v in sorted(after.get("zendesk", {}).items())))
            for name in ("linear", "github", "jira"):  # the trackers' own writes (the demand comment, handoff on)
                if after.get(name):
                    say(f"              {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(after[name].items())))
            time.sleep(6)  # past the Linear feed's 5 s overlap, as between real cycles
            run_once(pg)  # settle: the overlap windows re-read the last changes once
            pg.sandbox.reset_counts()
            github_statuses = watch_statuses(pg, "github")
            run = run_once(pg)
            result["idle"] = pg.sandbox.counts()
            result["idle_github_statuses"] = list(github_statuses)
            say(
                f"idle cycle:   {per_feed(pg.sandbox.counts())} ({run.seconds:.2f}s, syncd's CPU {run.cpu:.1f}s, "
                f"max RSS {run.rss:.0f} MiB)"
            )
            say(
                f"              GitHub answers: {', '.join(str(s) for s in github_statuses) or 'none'} "
                f"(one per repository; a 304 costs no rate limit)"
            )

            moved = seed.issues[: max(1, len(seed.issues) // 100)]
            for key in moved:
                pg.linear.move_to_state(key, "In Progress")
            # Fewer on GitHub and Jira: each changed issue is one bulk ticket
            # update, whose job status Zendesk makes us wait for (seconds each).
            closed = seed.github_issues[: max(1, len(moved) // 10)]
            for number in closed:
                seed.github.close(number, "completed")
            started = seed.jira_issues[: max(1, len(moved) // 10)]
            for jira_id in started:
                seed.jira.transition(jira_id, "In Progress")
            pg.sandbox.reset_counts()
            run = run_once(pg)
            busy = pg.sandbox.counts()
            result["busy"] = busy
            linked_busy = len(moved) * TICKETS_PER_ISSUE + (len(closed) + len(started)) * TICKETS_PER_OTHER_ISSUE
            say(
                f"busy cycle:   issues changed: {len(moved)} Linear (1 %), {len(closed)} GitHub, "
                f"{len(started)} Jira ({linked_busy}"
                f" linked tickets): {per_feed(busy)} ({run.seconds:.2f}s, syncd's CPU {run.cpu:.1f}s, "
                f"max RSS {run.rss:.0f} MiB)"
            )
            say("              " + ", ".join(f"{k} {v}" for k, v in sorted(busy.get("zendesk", {}).items())))

            throughput(pg, seed, say, result, profile, repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def http_seconds(app) -> float:
    """Seconds the app's connectors have spent in HTTP requests so far."""
    return sum(connector.http.stats.seconds for connector in app.connectors.values())


def timed_poll(app, name: str) -> tuple[int, int, float, float, float]:
    """Poll one feed in process: (changes, writes planned, seconds in all, seconds of planning,
    CPU seconds of the polling thread).

    Planning is the poll's time less the time its connectors spent in HTTP
    requests (the feed's pages, and any read a page needs): what syncd itself
    costs per change, apart from the sandbox's loopback answers. The CPU time
    is this thread's (``time.thread_time``): the sandbox answers in threads of
    its own, so it is syncd's work only (its HTTP client's parsing included),
    and other jobs on a shared machine do not stretch it as they do the wall clock."""
    http = http_seconds(app)
    cpu = time.thread_time()
    t = time.perf_counter()
    report = app.engine.poll(name)
    seconds = time.perf_counter() - t
    cpu = time.thread_time() - cpu
    return report.changed, report.actions, seconds, seconds - (http_seconds(app) - http), cpu


class QueryCount:
    """Counts the statements the store runs (``executemany`` counts once), for ``--profile``."""

    def __init__(self, store) -> None:
        self.count = 0
        self.by_statement: dict[str, int] = {}
        run, run_many = store._run, store._run_many

        def counted_run(sql, params):
            self.count += 1
            self.by_statement[sql[:72]] = self.by_statement.get(sql[:72], 0) + 1
            return run(sql, params)

        def counted_run_many(sql, rows):
            self.count += 1
            self.by_statement[sql[:72]] = self.by_statement.get(sql[:72], 0) + 1
            return run_many(sql, rows)

        store._run, store._run_many = counted_run, counted_run_many


def profiled_poll(app, name: str, say: Callable[[str], None], top: int) -> tuple[int, int, float, float, float]:
    """:func:`timed_poll` under cProfile: prints the store statements it ran and the top of the profile."""
    import cProfile
    import io
    import pstats

    queries = QueryCount(app.store)
    # Timed by this thread's CPU clock: on a shared machine the wall clock charges the waits for a
    # core (and the HTTP answers) to whatever function was running; the CPU clock charges work only.
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        got = timed_poll(app, name)
    finally:
        profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    lines = text.getvalue().splitlines()
    head = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    say(
        f"profile:      {name} poll, {got[0]} changes: {queries.count} store statements, {got[2]:.2f}s under cProfile "
        f"({got[4]:.2f} CPU seconds; the profile's times are CPU seconds of this thread)"
    )
    for sql, count in sorted(queries.by_statement.items(), key=lambda kv: -kv[1])[:top]:
        say(f"              {count:>6}  {sql}")
    for line in lines[max(head - 1, 0) :]:
        if line.strip():
            say("              " + line.replace(os.getcwd() + os.sep, ""))
    return got


# The throughput rounds' comments arrive at most this many a second (see throughput).
COMMENTS_A_SECOND = 250


def throughput(
    pg: Playground, seed: BenchSeed, say: Callable[[str], None], result: dict, profile: int = 0, repeat: int = 1
) -> None:
    """Changes per second through poll → record → map → plan → commit (no delivery), with and without HTTP.

    ``profile``: run the two polls under cProfile and print that many lines of each profile.
    ``repeat``: run the two polls that many times (new comments, the issues moved again each
    time; the first as without it) and print each round's rates and their medians."""
    n = min(1000, len(seed.tickets))
    issues = seed.issues[: min(500, len(seed.issues))]
    app = pg.app()
    poll = (lambda app, name: profiled_poll(app, name, say, profile)) if profile else timed_poll
    rounds: list[tuple[float, float, float, float]] = []
    try:
        for round_ in range(max(1, repeat)):
            for done, ticket_id in enumerate(seed.tickets[:n]):
                if done and done % COMMENTS_A_SECOND == 0:
                    # The sandbox's clock is the real one here: a thousand comments in one second
                    # would fill an events page with one second, which the export cannot page past
                    # (each of those tickets is then read on its own); customers do not write so.
                    time.sleep(1.0)
                pg.zendesk.add_comment(ticket_id, "Any news on this?", public=True)
            for key in issues:
                pg.linear.move_to_state(key, "In Review" if round_ % 2 == 0 else "In Progress")
            got = poll(app, "zendesk"), poll(app, "linear")
            poll = timed_poll  # a profile covers the first round only
            (t, _, _, t_plan, t_cpu), (i, _, _, i_plan, i_cpu) = got
            rounds.append((t / max(t_plan, 1e-9), i / max(i_plan, 1e-9), t / max(t_cpu, 1e-9), i / max(i_cpu, 1e-9)))
            if round_ == 0:
                tickets, _, ticket_s, ticket_plan_s, ticket_cpu = got[0]
                issues_changed, planned, issue_s, issue_plan_s, issue_cpu = got[1]
            else:
                rates = rounds[-1]
                say(
                    f"round {round_ + 1}:      planning {rates[0]:.0f} ticket / {rates[1]:.0f} issue changes/s, "
                    f"CPU {rates[2]:.0f} / {rates[3]:.0f} ({t} tickets, {i} issues changed)"
                )
    finally:
        app.close()
    result["throughput"] = {
        "tickets_per_s": tickets / ticket_s,
        "issues_per_s": issues_changed / issue_s,
        "planning_tickets_per_s": tickets / max(ticket_plan_s, 1e-9),
        "planning_issues_per_s": issues_changed / max(issue_plan_s, 1e-9),
        "cpu_tickets_per_s": tickets / max(ticket_cpu, 1e-9),
        "cpu_issues_per_s": issues_changed / max(issue_cpu, 1e-9),
    }
    under = " (under cProfile)" if profile else ""
    say(
        f"throughput:   {tickets / ticket_s:.0f} ticket changes/s, {issues_changed / issue_s:.0f} issue changes/s "
        f"({planned} writes planned for {issues_changed * TICKETS_PER_ISSUE} linked tickets), poll to commit{under}"
    )
    say(
        f"planning:     {tickets / max(ticket_plan_s, 1e-9):.0f} ticket changes/s, "
        f"{issues_changed / max(issue_plan_s, 1e-9):.0f} issue changes/s "
        f"(the same polls less their connectors' time in HTTP requests){under}"
    )
    say(
        f"CPU time:     {tickets / max(ticket_cpu, 1e-9):.0f} ticket changes/s, "
        f"{issues_changed / max(issue_cpu, 1e-9):.0f} issue changes/s "
        f"(changes per CPU second of the polling thread, HTTP client included: {ticket_cpu:.2f}s, {issue_cpu:.2f}s)"
        f"{under}"
    )
    if len(rounds) > 1:
        medians = [statistics.median(r[k] for r in rounds) for k in range(4)]
        result["throughput"]["median_of_rounds"] = {"rounds": len(rounds), "rates": medians}
        say(
            f"median of {len(rounds)} rounds: planning {medians[0]:.0f} ticket / {medians[1]:.0f} issue changes/s, "
            f"CPU {medians[2]:.0f} / {medians[3]:.0f} per CPU second"
            + (" (the first, profiled, round included)" if profile else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated link counts (default: 1000,10000)")
    parser.add_argument(
        "--handoff", action="store_true", help="turn the handoff on (a [stages] mapping set) to measure what it adds"
    )
    parser.add_argument(
        "--replicas",
        default="1,2,3",
        help="replica counts for the PostgreSQL throughput figures (default: 1,2,3; '' skips them)",
    )
    parser.add_argument("--replica-changes", type=int, default=300, help="the backlog each replica count delivers")
    parser.add_argument(
        "--replica-latency", type=float, default=0.05, help="seconds each request waits for its answer (default 0.05)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=12,
        default=0,
        metavar="LINES",
        help="run the throughput polls under cProfile; print their store statements and the top LINES (default 12)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the throughput polls N times (new comments, the issues moved again) and print the medians",
    )
    parser.add_argument(
        "--mix",
        action="store_true",
        help="first sync of tickets naming Linear, GitHub and Jira issues (a third each), links made through the APIs",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="only time a change in the tracker to its note on the ticket, with and without webhook doorbells",
    )
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    if args.latency:
        from tools.bench_latency import latency

        latency(lambda text: print(text, flush=True))
        return 0
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        if args.mix:
            bench_mix(size)
        else:
            bench(size, handoff=args.handoff, profile=args.profile, repeat=args.repeat)
    counts = [int(n) for n in args.replicas.split(",") if n.strip()]
    if counts:
        bench_replicas(counts, args.replica_changes, args.replica_latency)
    return 0


def bench_replicas(counts: list[int], changes: int, latency: float = 0.05) -> None:
    """Throughput of 1, 2, 3 `syncd run` replicas sharing one PostgreSQL store (docs/scaling.md).

    A backlog of ``changes`` is made first; the replicas then deliver it with
    every request answered after ``latency`` seconds (as a service would), and
    the writes a second until the last write landed are reported.
    """
    from tests.postgres import find_server
    from tools.chaos_replicas import throughput

    url, how, tried = find_server()
    if url is None:
        print("replicas: skipped, no PostgreSQL server: " + "; ".join(tried))
        return
    print(f"replicas on PostgreSQL ({how}), a backlog of {changes} changes, {latency * 1000:.0f} ms per request:")
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="syncd-bench-replicas-") as tmp:
            got = throughput(Path(tmp), url, replicas=n, changes=changes, latency=latency)
        print(
            f"  {n} replica(s): {got['writes']} writes in {got['seconds']:.1f} s, "
            f"{got['writes_per_second']:.1f} writes/s"
        )


if __name__ == "__main__":
    sys.exit(main())
