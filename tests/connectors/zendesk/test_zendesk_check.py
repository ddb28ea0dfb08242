"""`syncd check` for Zendesk: the custom fields syncd reads and writes exist, are
active, and are text fields where syncd writes free text (one List Ticket Fields request)."""

from __future__ import annotations

import responses

from connectors.base import CheckTargets, FieldUse
from connectors.zendesk.connector import FIELDS_PATH
from tests.connectors.zendesk.test_zendesk import BASE, make


def field(fid: int, kind: str, title: str, active: bool = True) -> dict:
    return {"id": fid, "type": kind, "title": title, "active": active}


FIELDS = [
    field(100, "text", "Linked issue"),
    field(101, "textarea", "Linked issue status"),
    field(102, "tagger", "Severity"),
    field(103, "text", "Old stage", active=False),
    field(104, "integer", "Count"),
]


@responses.activate
def test_fields_that_exist_with_the_right_types_pass_in_one_request():
    responses.get(BASE + FIELDS_PATH, json={"ticket_fields": FIELDS, "next_page": None, "count": len(FIELDS)})
    targets = CheckTargets(fields=(FieldUse("rules/routes.toml:3: routes.a.severity.field", "102", "the severity"),))
    assert make(link_field_id=100, status_field_id=101).check_objects(targets) == []
    assert len(responses.calls) == 1


@responses.activate
def test_a_missing_an_inactive_and_a_non_text_field_are_errors_naming_their_key():
    responses.get(BASE + FIELDS_PATH, json={"ticket_fields": FIELDS, "next_page": None, "count": len(FIELDS)})
    targets = CheckTargets(
        fields=(
            FieldUse("rules/stages.toml:2: stages.field", "103", "where the follow-up stage is shown", True),
            FieldUse("rules/stages.toml:2: stages.missing_field", "102", "what a ticket lacks", True),
            FieldUse("rules/links.toml:1: links.fields", "104", "scanned for issue keys", text=True),
        )
    )
    found = make(link_field_id=999, status_field_id=102).check_objects(targets)
    assert [(f.level, f.where) for f in found] == [
        ("error", "connectors.zd.link_field_id"),
        ("error", "connectors.zd.status_field_id"),
        ("error", "rules/stages.toml:2: stages.field"),
        ("error", "rules/stages.toml:2: stages.missing_field"),
        ("warning", "rules/links.toml:1: links.fields"),
    ]
    assert found[0].message.startswith("Zendesk has no ticket field 999 (where agents paste an issue key or URL)")
    assert found[1].message.startswith('field 102 "Severity" is of type tagger; syncd writes free text to it')
    assert found[2].message == 'field 103 "Old stage" is inactive: agents do not see it; activate it in Zendesk'
    assert found[4].message.startswith('field 104 "Count" is of type integer; syncd reads free text there')


@responses.activate
def test_nothing_configured_asks_nothing():
    assert make().check_objects(CheckTargets()) == []
    assert len(responses.calls) == 0
