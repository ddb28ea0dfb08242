"""The Jira fake behind a sandbox, on a clock the test moves (the fake's, comments' and slots' tests)."""

from __future__ import annotations

import pytest

from connectors.jira.fake import JiraFake
from syncd.sandbox.server import Sandbox
from tests.connectors.jira.test_jira_fake import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock):
    service = JiraFake(user_time_zone="America/New_York", clock=clock)
    with Sandbox([service]):
        yield service
