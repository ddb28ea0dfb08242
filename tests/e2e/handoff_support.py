"""What the handoff's end-to-end tests share: a clock they move, the shipped example mappings,
and the playground made of them."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from mappings.files import EXAMPLES
from syncd.app import App
from syncd.sandbox.harness import Playground
from syncd.sandbox.runner import build_sandbox


class MondayClock:
    """The sandbox's and the engine's time: a Monday morning in Berlin, moved on by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**(delta or {"minutes": 1}))


def copy_examples(tmp_path: Path) -> Path:
    """The shipped example set as an admin starts from it (its ids are the sandbox's)."""
    directory = tmp_path / "mappings"
    shutil.copytree(EXAMPLES, directory)
    return directory


def cycle(app: App, clock: MondayClock) -> None:
    """One engine cycle a minute later, which must go well."""
    clock.advance()
    report = app.engine.cycle()
    assert report.ok, report.summary()


@contextmanager
def handoff_playground(tmp_path: Path, clock: MondayClock, mappings: Path | None = None) -> Iterator[Playground]:
    """The handoff's playground: the seeded desk and Linear on ``clock``, syncd set up in
    ``tmp_path/work`` with the shipped example mappings (or the set in ``mappings``)."""
    sandbox = build_sandbox(clock=clock, trackers=("linear",))
    with Playground(
        tmp_path / "work", sandbox=sandbox, trackers=("linear",), mappings=mappings or copy_examples(tmp_path)
    ) as playground:
        yield playground
