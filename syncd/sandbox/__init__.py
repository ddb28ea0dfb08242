"""Fake services for the demo, end-to-end tests and benchmarks.

``build_sandbox()`` gives both fakes (Zendesk and Linear), seeded with
realistic data, in a :class:`~syncd.sandbox.server.Sandbox`; ``serve()`` runs
them until interrupted. Each fake counts every request and can inject faults.
"""

from syncd.sandbox.linear import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.runner import build_sandbox, config_snippet, serve
from syncd.sandbox.seed import SeedResult, seed
from syncd.sandbox.server import FAULT_KINDS, FaultRule, FakeService, Sandbox
from syncd.sandbox.zendesk import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake

__all__ = [
    "FAULT_KINDS", "FakeService", "FaultRule", "LinearFake", "SANDBOX_API_KEY", "SANDBOX_EMAIL",
    "SANDBOX_TOKEN", "Sandbox", "SeedResult", "ZendeskFake", "build_sandbox", "config_snippet", "seed", "serve",
]
