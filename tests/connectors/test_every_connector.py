"""Every registered connector takes the same exam (connectors/testing.py) against its own fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import connector_class
from connectors.testing import CHECKS, Exam, kinds, load_fake
from syncd.sandbox.server import FakeService

HERE = Path(__file__).parent


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("kind", kinds())
def test_conformance(kind, check):
    with Exam(kind) as exam:
        check(exam)


@pytest.mark.parametrize("kind", kinds())
def test_every_kind_has_a_fake_and_tests_of_its_own(kind):
    """A registered kind names a fake that takes the exam, and has its tests in tests/connectors/<kind>/."""
    cls = connector_class(kind)
    assert cls.fake, f"{cls.__name__} declares no fake: set Connector.fake"
    fake = load_fake(cls)
    assert issubclass(fake, FakeService), f"{cls.fake} is not a FakeService"
    assert fake.exam_config is not FakeService.exam_config, f"{cls.fake} does not answer the exam"
    assert any((HERE / kind).glob("test_*.py")), f"no tests/connectors/{kind}/test_*.py for the {kind} connector"


def test_the_meta_test_sees_a_kind_without_a_fake():
    class Entry:
        def load(self):
            return type("NoFake", (connector_class(kinds()[0]),), {"fake": None})

    with pytest.raises(ValueError, match="declares no fake"):
        load_fake(connector_class("nofake", {"nofake": Entry()}))
