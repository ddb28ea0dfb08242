"""Fake services for the demo, end-to-end tests and benchmarks.

Each service's fake lives in its connector's folder (``connectors/<kind>/fake.py``),
and so does its part of the seeded world (``connectors/<kind>/seed.py``, see
:mod:`syncd.sandbox.world`); :mod:`syncd.sandbox.seed` puts the parts together.
``runner.build_sandbox()`` gives them, seeded with realistic data, in a
:class:`~syncd.sandbox.server.Sandbox`; ``runner.serve()`` runs them until
interrupted. Each fake counts every request and can inject faults.
"""

from syncd.sandbox.server import FAULT_KINDS, FakeService, FaultRule, Sandbox

__all__ = [
    "FAULT_KINDS",
    "FakeService",
    "FaultRule",
    "Sandbox",
]
