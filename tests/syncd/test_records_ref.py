from syncd.records import Ref, idempotency_key


def test_ref_round_trip():
    ref = Ref.parse("zendesk:42")
    assert ref == Ref("zendesk", "42")
    assert str(ref) == "zendesk:42"


def test_idempotency_key_is_stable_and_short():
    assert idempotency_key("a", 1) == idempotency_key("a", 1)
    assert idempotency_key("a", 1) != idempotency_key("a", 2)
    assert len(idempotency_key("x")) == 20


def test_ref_is_stored_as_a_record_and_logged_as_its_text():
    from datetime import datetime, timezone

    from syncd.logs import redact_value
    from syncd.records import Promise, from_dict, to_dict

    ref = Ref("zendesk", "42")
    assert to_dict(ref) == {"_type": "Ref", "connector": "zendesk", "id": "42"}  # never a list
    promise = Promise("p1", ref, "an update", datetime(2026, 1, 5, tzinfo=timezone.utc), "rule", (Ref("linear", "u1"),))
    back = from_dict(to_dict(promise))
    assert back == promise and type(back.ticket) is Ref and type(back.issues[0]) is Ref
    assert redact_value(ref) == "zendesk:42" and redact_value([ref]) == ["zendesk:42"]
    assert {ref: 1}[Ref("zendesk", "42")] == 1 and ref != Ref("zendesk", "43") and ref != Ref("jira", "42")
