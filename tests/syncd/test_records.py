"""The records' JSON form: what the store keeps as snapshots."""

from __future__ import annotations

from datetime import datetime, timezone

from syncd.records import Issue, Ref, StateCategory, from_dict, to_dict

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)


def test_an_issue_keeps_its_trackers_own_state_words():
    issue = Issue(
        Ref("gh", "1"),
        "acme/web#1",
        "u",
        "t",
        StateCategory.CANCELED,
        "Closed (not planned)",
        T0,
        native={"state": "closed", "reason": "not_planned"},
    )
    assert from_dict(to_dict(issue)) == issue


def test_a_snapshot_stored_before_native_was_kept_still_loads():
    old = to_dict(Issue(Ref("lin", "a"), "ENG-1", "u", "t", StateCategory.STARTED, "In Review", T0))
    del old["native"]
    assert from_dict(old).native == {}


def test_from_json_reads_what_from_dict_of_json_loads_reads():
    import json
    from datetime import datetime, timezone

    from syncd.records import (
        Attachment,
        Customer,
        Issue,
        Organization,
        Promise,
        PromiseChange,
        PromiseState,
        Ref,
        StateCategory,
        Ticket,
        from_dict,
        from_json,
        to_dict,
    )

    at = datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=timezone.utc)
    records = [
        Ticket(
            Ref("zendesk", "1"),
            "#1",
            "u",
            "subj",
            "open",
            at,
            at,
            "high",
            Customer("c", "n", "e@x", "o"),
            Organization("o", "Org", "gold"),
            "a",
            None,
            "g",
            ("x", "y"),
            {"1": "a", "2": ["b", "c"], "3": {"k": [1, 2.5, None, True]}},
        ),
        Promise(
            "p",
            Ref("zendesk", "1"),
            "an update",
            at,
            "rule",
            (Ref("linear", "u"),),
            "agent",
            at,
            "issue_resolved",
            PromiseState.DUE,
            (PromiseChange(PromiseState.OPEN, at, "made"),),
        ),
        Issue(
            Ref("linear", "u"),
            "ENG-1",
            "u",
            "t",
            StateCategory.STARTED,
            "In Progress",
            at,
            attachments=(Attachment("u", "t", "m"),),
            native={"name": None, "type": "started"},  # sorted, as stored
        ),
        {"plain": [1, {"nested": "dict"}], "ref": Ref("a", "b")},
    ]
    for record in records:
        text = json.dumps(to_dict(record), sort_keys=True)
        got = from_json(text)
        assert got == from_dict(json.loads(text)) == record
        assert repr(got) == repr(record)  # tuples stay tuples, lists lists, enums enums
