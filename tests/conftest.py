"""Fixtures shared by the whole suite.

``../shared`` (beside the repository) holds the official API descriptions and
recorded traffic. CI has it; a user's fresh clone may not, and then the tests
that need it skip and say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
SPECS = SHARED / "specs"
FIXTURES = SHARED / "fixtures"


def require_shared(path: Path) -> Path:
    """Return ``path`` under ../shared, or skip the test naming what is missing."""
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (API specs and recorded fixtures) sits beside "
                    "the repository in CI; clone it there to run this test")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return require_shared(FIXTURES)


@pytest.fixture
def specs_dir() -> Path:
    return require_shared(SPECS)
