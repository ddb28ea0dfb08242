"""The conformance exam (connectors/testing.py) for Intercom against its fake."""

from __future__ import annotations

import pytest

from connectors.testing import CHECKS, Exam


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_exam(check):
    with Exam("intercom") as exam:
        check(exam)
