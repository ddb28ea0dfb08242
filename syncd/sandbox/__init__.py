"""Fake services for the demo, end-to-end tests and benchmarks.

``build_sandbox()`` gives the fakes (Zendesk, Linear, GitHub, Jira), seeded with
realistic data, in a :class:`~syncd.sandbox.server.Sandbox`; ``serve()`` runs
them until interrupted. Each fake counts every request and can inject faults.
"""

from syncd.sandbox.github import SANDBOX_GITHUB_TOKEN, GitHubFake
from syncd.sandbox.jira import JiraFake
from syncd.sandbox.linear import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.runner import TRACKERS, build_sandbox, config_snippet, serve
from syncd.sandbox.seed import SeedResult, seed
from syncd.sandbox.server import FAULT_KINDS, FakeService, FaultRule, Sandbox
from syncd.sandbox.zendesk import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake

__all__ = [
    "FAULT_KINDS",
    "FakeService",
    "FaultRule",
    "GitHubFake",
    "JiraFake",
    "LinearFake",
    "SANDBOX_API_KEY",
    "SANDBOX_EMAIL",
    "SANDBOX_GITHUB_TOKEN",
    "SANDBOX_TOKEN",
    "Sandbox",
    "SeedResult",
    "TRACKERS",
    "ZendeskFake",
    "build_sandbox",
    "config_snippet",
    "seed",
    "serve",
]
