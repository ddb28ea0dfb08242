"""``python -m tools.bench_presence``: what the existence check of linked issues costs.

Builds a sandbox with N linked issues on each tracker (links written into the
store directly, as ``make bench`` does for GitHub and Jira), deletes 1 % of
them, and runs :meth:`syncd.engine.Engine.check_presence` until every linked
issue was checked once, then once more (nothing changed: GitHub answers 304).
Prints the requests each tracker took per run, from the sandbox's counters.
Figures are printed; nothing is asserted (tests/e2e/test_gone_issues.py does).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from connectors.github.fake import GITHUB_REPOSITORIES
from syncd.logs import configure_logging
from syncd.records import Link, Ref, parse_time
from syncd.sandbox.harness import Playground


def measure(n: int, budget: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Playground(Path(tmp), seed_data=False) as pg:
        github, jira = pg.github, pg.jira
        if github is None or jira is None:
            raise SystemExit("bench_presence: the sandbox has no GitHub or no Jira fake")
        for name, private in GITHUB_REPOSITORIES:
            github.create_repo(name, private=private)
        team = pg.linear.add_team("ENG", "Engineering")
        ids = {
            "jira": [jira.create_issue("PLAT", f"Issue {i}").id for i in range(n)],
            "linear": [pg.linear.create_issue(team, f"Issue {i}")["id"] for i in range(n)],
            "github": [str(github.create_issue("sandbox/billing", f"Issue {i}").id) for i in range(n)],
        }
        app = pg.app()
        try:
            app.engine.cycle()  # the feeds read every issue (GitHub needs their keys)
            with app.store.transaction():
                for tracker, idents in ids.items():
                    for i, ident in enumerate(idents):
                        app.store.add_link(Link(Ref("zendesk", str(100000 + i)), Ref(tracker, ident), "field"))
            for i in range(0, n, 100):
                jira.delete_issue(jira.issues[ids["jira"][i]].key)
                pg.linear.delete_issue(ids["linear"][i])
                github.delete(github.issues[int(ids["github"][i])])
            for label in ("first pass (1 % deleted)", "second pass (nothing changed)"):
                spent = {name: 0 for name in ids}
                runs = {name: 0 for name in ids}
                pg.sandbox.reset_counts()
                remaining = github.rate_remaining
                start = app.engine.clock()
                started = time.perf_counter()
                while True:
                    # One run per presence_interval; a pass ends when every linked issue
                    # of a tracker has been checked since it began.
                    pending = {
                        t: [i for i, _ in app.store.presence_due(t, 10 * n) if _checked_before(app, Ref(t, i), start)]
                        for t in ids
                    }
                    if not any(pending.values()):
                        break
                    got = app.engine.check_presence(budget)
                    for t in ids:
                        if pending[t]:
                            spent[t] += got.get(t, 0)
                            runs[t] += 1
                elapsed = time.perf_counter() - started
                print(f"{n} linked issues per tracker, budget {budget} requests a run - {label}:")
                for t in ids:
                    print(f"  {t:7} {spent[t]:5} requests in {runs[t]} run(s)")
                ended = sum(1 for r in app.store.all_links(active=False) if not r.active)
                print(
                    f"  links ended so far: {ended}; GitHub primary rate limit spent: "
                    f"{remaining - github.rate_remaining}; {elapsed:.1f} s"
                )
        finally:
            app.close()


def _checked_before(app, ref: Ref, start) -> bool:
    when = parse_time(app.store.get_meta(ref).get("presence_at"))
    return when is None or when < start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1000, help="linked issues per tracker")
    parser.add_argument("--budget", type=int, default=200, help="requests per tracker per run")
    args = parser.parse_args()
    configure_logging("warning", "console")
    measure(args.links, args.budget)


if __name__ == "__main__":
    main()
