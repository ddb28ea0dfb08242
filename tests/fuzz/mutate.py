"""Hypothesis strategies that break real payloads the way the wire can.

``mutated(base)`` starts from a recorded payload and applies a few
mutations at paths drawn from the payload itself: delete a key, replace a
value by junk of another type (null, numbers at the edges, huge and exotic
strings, timestamps that are almost right, nested junk), or drop the whole
object for junk. The base comes from ../shared/fixtures, so the mutations
hit the keys the normalisers actually read.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The suite default; `make fuzz` raises it (see docs/reliability.md).
EXAMPLES = int(os.environ.get("SYNCD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "NaN",
    "x" * 100_000,
    "𝔘" * 20_000,
    "\u202e" * 500,
    "\ud800",
    "syncd:0123456789abcdef0123",
    "<script>alert(1)</script>",
    "@channel",
    "\n" * 1000,
    "2024-13-45T99:99:99Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01",
    "2024-02-30T00:00:00Z",
    "2026-11-21T12:00:00.000+0000",
    "+002024-01-01T00:00:00Z",
]
ODD_NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 1.5, -0.0, float("inf"), float("-inf"), float("nan")]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(ODD_NUMBERS),
    st.integers(),
    st.floats(),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=40),
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``value`` (dict keys and list indexes), the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value[:5]):  # enough of a long list
            out += paths(child, prefix + (i,))
    return out


def _apply(value: Any, path: tuple, op: str, junk: Any) -> Any:
    if not path:
        return junk if op != "delete" else None
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        if isinstance(parent, dict):
            parent.pop(last, None)
        else:
            parent.pop(last)
    elif op == "null":
        parent[last] = None
    else:
        parent[last] = junk
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_mutations: int = 4) -> Any:
    """A copy of ``base`` with 1..max_mutations mutations at drawn paths."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = paths(value)
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["delete", "null", "junk", "junk", "odd"]))
        junk = draw(st.sampled_from(ODD_STRINGS + ODD_NUMBERS) if op == "odd" else JUNK)
        try:
            value = _apply(value, path, op, junk)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the path
    return value


def payloads(base: Any) -> st.SearchStrategy:
    """Mostly mutations of ``base``, sometimes pure junk."""
    return st.one_of(mutated(base), mutated(base), mutated(base), JUNK)
