"""What the store keeps for ``syncd status``: poll outcomes, when a cursor last moved, writes waiting per connector."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from syncd.store import Store
from syncd.writes import Action, TicketUpdate

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    with Store(tmp_path / "syncd.db", clock=clock) as s:
        yield s


def test_a_cursor_ages_from_when_it_last_moved_not_from_the_last_idle_poll(store, clock):
    store.set_cursor("zendesk", "a")
    clock.now += timedelta(minutes=5)
    store.set_cursor("zendesk", "a")  # an idle poll: the same position
    assert store.stats()["cursors"]["zendesk"]["updated_at"] == T0
    clock.now += timedelta(minutes=5)
    store.set_cursor("zendesk", "b")
    assert store.stats()["cursors"]["zendesk"]["updated_at"] == T0 + timedelta(minutes=10)
    store.set_cursor("zendesk", None)  # a reset moves it too
    clock.now += timedelta(minutes=1)
    store.set_cursor("zendesk", None)
    assert store.stats()["cursors"]["zendesk"] == {"value": None, "updated_at": T0 + timedelta(minutes=10)}


def test_poll_outcomes_keep_the_last_success_and_the_last_error_apart(store):
    assert store.polls() == {}
    store.note_poll("linear", T0, "HTTP 503 from the service")
    store.note_poll("linear", T0 + timedelta(seconds=30))
    store.note_poll("zendesk", T0 + timedelta(seconds=40))
    assert store.polls() == {
        "linear": {
            "last_success": T0 + timedelta(seconds=30),
            "last_error": "HTTP 503 from the service",
            "last_error_at": T0,
        },
        "zendesk": {"last_success": T0 + timedelta(seconds=40)},
    }


def test_a_poll_error_is_kept_without_its_secret(store):
    store.note_poll("linear", T0, "refused: Authorization: Bearer lin_api_abcdefghijklmnopqrstuvwxyz0123456789")
    assert "lin_api_abcdefghijklmnopqrstuvwxyz0123456789" not in store.polls()["linear"]["last_error"]


def test_writes_waiting_per_connector_with_the_oldest(store, clock):
    def plan(key: str, connector: str) -> None:
        store.enqueue(Action(key, connector, "1", TicketUpdate(), f"{connector}:1"))

    plan("a", "zendesk")
    clock.now += timedelta(minutes=2)
    plan("b", "zendesk")
    plan("c", "linear")
    [done] = [r for r in store.list_outbox("pending") if r.key == "c"]
    store.mark_done(done.id)
    assert store.waiting_by_connector() == {"zendesk": (2, T0)}
