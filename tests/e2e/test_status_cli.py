"""``syncd status`` after ``syncd once`` runs (no daemon): what the polls noted, as a table and as JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.sandbox.harness import Playground

pytestmark = pytest.mark.e2e


def invoke(pg: Playground, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env={**pg.env, "SYNCD_CONFIG": str(pg.config_path), **(env or {})})


def test_status_after_once_shows_each_connectors_last_success_and_last_error(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg:
        assert invoke(pg, "once").exit_code == 0
        wrong = {"SYNCD_CONNECTORS__LINEAR__API_KEY": "lin_api_wrong_key_for_the_status_test_000000"}
        assert invoke(pg, "once", env=wrong).exit_code == 1

        facts = json.loads(invoke(pg, "status", "--json").output)
        zendesk, linear = facts["connectors"]["zendesk"], facts["connectors"]["linear"]
        assert zendesk["ok"] and zendesk["error"] is None and zendesk["last_success"] is not None
        assert zendesk["last_error"] is None and zendesk["cursor_moved_at"] is not None
        assert not linear["ok"] and linear["error"] == linear["last_error"] and linear["last_success"] is not None
        assert linear["last_error_at"] >= linear["last_success"]  # ISO UTC text sorts as time
        assert facts["links"]["active"] == 8 and facts["backlog"] == 0 and facts["dead_letters"] == []
        assert facts["daemon"]["pid"] is None and facts["last_reload"] is None
        assert [h["what"] for h in facts["history"]][:1] == ["delivered"]

        table = invoke(pg, "status")
        assert table.exit_code == 0
        lines = table.output.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("connector "))
        columns = [lines[header].index(word) for word in ("state", "last success", "lag", "cursor age", "last error")]
        rows = {line.split()[0]: line for line in lines[header + 1 : header + 3]}
        assert set(rows) == {"zendesk", "linear"}
        state, last_error = columns[0], columns[4]
        assert rows["zendesk"][state:].startswith("ok ") and rows["zendesk"][last_error:] == "-"
        assert rows["linear"][state:].startswith("failing ") and " ago: " in rows["linear"][last_error:]
        assert "lin_api_wrong_key" not in table.output

        # Linear answers again: its next poll clears the error, the last one stays on record.
        assert invoke(pg, "once").exit_code == 0
        linear = json.loads(invoke(pg, "status", "--json").output)["connectors"]["linear"]
        assert linear["ok"] and linear["error"] is None and linear["last_error"] is not None
