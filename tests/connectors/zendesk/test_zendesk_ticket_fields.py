"""Ticket fields the handoff reads: the assignee's name (the handoff record) and the form (route matching)."""

from __future__ import annotations

from tests.connectors.zendesk.test_zendesk import make


def raw(**extra) -> dict:
    return {
        "id": 7,
        "status": "open",
        "subject": "s",
        "updated_at": "2026-11-23T09:00:00Z",
        "created_at": "2026-11-20T09:00:00Z",
        "requester_id": 1,
        "assignee_id": 2,
        "tags": [],
        "custom_fields": [],
        **extra,
    }


def test_the_assignee_is_named_from_the_sideloaded_users_and_the_form_is_kept():
    users = {1: {"id": 1, "name": "Hannah"}, 2: {"id": 2, "name": "Priya Raman"}}
    ticket = make()._ticket(raw(ticket_form_id=360001), users, {})
    assert ticket.assignee_id == "2" and ticket.assignee_name == "Priya Raman"
    assert ticket.form_id == "360001"


def test_without_the_sideload_or_a_form_nothing_is_invented():
    ticket = make()._ticket(raw(ticket_form_id=None), {}, {})
    assert ticket.assignee_name is None and ticket.form_id is None
