"""syncd.status: the facts gathered from a real store, the table and the page they make.

Hostile text (markup, quotes, an ampersand, a line break) in a dead letter's
error, a quarantine reason and an event's summary reaches the page as text: a
browser's parser gives back exactly what was stored.
"""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from syncd.records import Event, Ref
from syncd.sandbox.harness import Playground
from syncd.status import age_text, gather, loopback, render_html, render_text
from syncd.writes import Action, TicketUpdate

HOSTILE = "<script>alert('x')</script> & \"quoted\" <b>bold</b>\nsecond line"


class Cells(HTMLParser):
    def __init__(self, page: str):
        super().__init__()
        self.cells: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def facts(tmp_path):
    with Playground(tmp_path, trackers=("linear",)) as pg, pg.app() as app:
        app.engine.cycle()
        store, now = app.store, app.engine.clock()
        store.note_poll("zendesk", now - timedelta(seconds=90), "HTTP 503 from Zendesk")
        store.note_poll("zendesk", now - timedelta(seconds=30))
        store.note_poll("linear", now - timedelta(seconds=5), HOSTILE)
        store.quarantine("linear", "issue-9", HOSTILE, {"raw": 1})
        ticket = pg.seed.tickets["vat"]
        store.enqueue(Action("status-test", "zendesk", str(ticket), TicketUpdate(), f"zendesk:{ticket}"))
        [action] = [r for r in store.list_outbox("pending") if r.key == "status-test"]
        store.mark_failed(action.id, HOSTILE, retry_at=None, dead=True)
        store.add_event(Event("dead_letter", HOSTILE, Ref("zendesk", str(ticket)), None, {}))
        yield gather(store, app.settings, now + timedelta(seconds=60)), now + timedelta(seconds=60), ticket


def test_the_facts_are_plain_json(facts):
    status, now, ticket = facts
    assert json.loads(json.dumps(status)) == status  # no datetime, no object: JSON as it is
    zendesk, linear = status["connectors"]["zendesk"], status["connectors"]["linear"]
    assert zendesk["last_success_age_seconds"] == 90.0 and zendesk["last_error"] == "HTTP 503 from Zendesk"
    assert zendesk["error"] is None and zendesk["ok"] is True  # a later poll went through
    assert linear["error"] == HOSTILE and linear["ok"] is False  # its last poll failed
    assert zendesk["writes_waiting"] == 0 and zendesk["lag_seconds"] == 0.0
    [dead] = status["dead_letters"]
    assert (dead["write"], dead["to"], dead["error"]) == ("ticket update", f"zendesk #{ticket}", HOSTILE)
    assert status["quarantine"]["open"] == 1 and status["history"][0]["summary"] == HOSTILE
    assert status["outbox"]["dead"] == 1 and status["links"]["active"] == 8


def test_the_page_escapes_everything_and_refreshes_itself(facts):
    status, now, _ = facts
    page = render_html(status, now)
    parsed = Cells(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags
    assert parsed.cells.count(HOSTILE) == 3  # the dead letter's error, the quarantine reason, the event
    assert any(HOSTILE in cell for cell in parsed.cells if cell.endswith("second line"))  # linear's last error
    assert '<meta http-equiv="refresh" content="10">' in page


def test_the_table_is_words_not_reprs(facts):
    status, now, ticket = facts
    text = render_text(status, now)
    header = next(line for line in text.splitlines() if line.startswith("connector"))
    assert header.split() == ["connector", "kind", "state", "last", "success", "lag", "cursor", "age", "last", "error"]
    zendesk = next(line for line in text.splitlines() if line.startswith("zendesk "))
    assert " ok " in zendesk and "1m 30s ago" in zendesk and "2m 30s ago: HTTP 503 from Zendesk" in zendesk
    linear = next(line for line in text.splitlines() if line.startswith("linear "))
    assert " failing " in linear and linear.endswith("<b>bold</b> second line")  # the error on one line
    assert f"ticket update, zendesk #{ticket}" in text
    for repr_mark in ("{'", '{"', "None", "datetime(", "Ref("):
        assert repr_mark not in text


@pytest.mark.parametrize(
    "seconds, text", [(None, "-"), (0, "0s"), (59.9, "59s"), (60, "1m 00s"), (3725, "1h 02m"), (90061, "1d 01h")]
)
def test_ages_in_words(seconds, text):
    assert age_text(seconds) == text


@pytest.mark.parametrize(
    "peer, local",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.0.2.7", False),
        ("2001:db8::1", False),
        ("::ffff:192.0.2.7", False),
        ("not an address", False),
    ],
)
def test_loopback(peer, local):
    assert loopback(peer) is local
