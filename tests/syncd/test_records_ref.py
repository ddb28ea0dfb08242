from syncd.records import Ref, idempotency_key


def test_ref_round_trip():
    ref = Ref.parse("zendesk:42")
    assert ref == Ref("zendesk", "42")
    assert str(ref) == "zendesk:42"


def test_idempotency_key_is_stable_and_short():
    assert idempotency_key("a", 1) == idempotency_key("a", 1)
    assert idempotency_key("a", 1) != idempotency_key("a", 2)
    assert len(idempotency_key("x")) == 20
