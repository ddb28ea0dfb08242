"""A malformed record in a real feed page: quarantined with its reason, the rest processed.

Through the sandbox and the real CLI: a ticket whose stored state is broken
(as a buggy proxy or an API change could make it) sits in the same export
page as a ticket an agent just linked.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connectors.base import find_markers
from syncd.cli import main
from syncd.records import Ref
from syncd.sandbox.harness import Playground
from syncd.store import Store

pytestmark = pytest.mark.e2e


def test_bad_ticket_is_quarantined_the_page_goes_on_and_retry_releases_it(tmp_path):
    runner = CliRunner()
    with Playground(tmp_path) as pg:
        env = pg.cli_env()
        assert runner.invoke(main, ["once"], env=env).exit_code == 0  # first sync
        good, key = pg.seed.tickets["search"], pg.seed.identifiers["search"]
        requester = next(u for u in pg.zendesk.users.values() if u["role"] == "end-user")
        bad = pg.zendesk.create_ticket("Broken on the wire", "x", requester_id=requester["id"])["id"]
        with pg.zendesk.lock:
            pg.zendesk.tickets[bad]["tags"] = {"not": "a list"}
        pg.agent_note(good, f"Tracked in {key}")

        once = runner.invoke(main, ["once", "--json"], env=env)
        assert once.exit_code == 0, once.output

        listed = runner.invoke(main, ["quarantine", "list"], env=env)
        assert listed.exit_code == 0
        (line,) = listed.output.splitlines()
        qid = int(line.split()[0])
        assert f"zendesk:{bad}  zendesk: ticket {bad}: tags is not a list of strings" in line
        # The rest of the page went on: the good ticket was linked and noted.
        notes = [c for c in pg.zendesk.ticket_comments(good) if find_markers(c["body"])]
        assert len(notes) == 1 and f"Linked to {key}" in notes[0]["body"]
        with Store(pg.store_path, readonly=True) as store:
            assert [r.issue.id for r in store.links_for_ticket(Ref("zendesk", str(good)))] == [pg.seed.issues["search"]]
            assert store.get_snapshot(Ref("zendesk", str(bad))) is None

        still = runner.invoke(main, ["quarantine", "retry", str(qid)], env=env)
        assert still.exit_code == 1
        assert f"quarantine {qid}: zendesk:{bad} still cannot be read: zendesk: ticket {bad}: tags" in still.output
        assert runner.invoke(main, ["quarantine", "list"], env=env).output.startswith(f"{qid:>5} zendesk:{bad}")

        with pg.zendesk.lock:
            pg.zendesk.tickets[bad]["tags"] = []
        released = runner.invoke(main, ["quarantine", "retry", str(qid)], env=env)
        assert released.exit_code == 0, released.output
        assert released.output.strip() == f"quarantine {qid}: zendesk:{bad} released; its next change is processed"
        assert runner.invoke(main, ["quarantine", "list"], env=env).output.strip() == "quarantine empty"

        unknown = runner.invoke(main, ["quarantine", "retry", "999"], env=env)
        assert unknown.exit_code == 2
        assert "no quarantined record with id 999 (see: syncd quarantine list)" in unknown.output
