"""What the handoff's end-to-end tests share: a clock they move, and the shipped example mappings."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mappings.files import EXAMPLES


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
