"""A service's knowledge lives in its connector: the policy layer and the engine name no service.

The rule, checked token by token: in ``mappings/*.py`` and in the engine's
modules (``CORE`` below), no Python token other than a comment or a docstring
contains the kind or the display name of a registered connector (case does not
matter: "github", "GitHub", "GITHUB_..."). Comments and docstrings may name a
service to give an example ("a Jira project key"); code, messages and
defaults may not. Capabilities are declared (connectors.base), never probed
with ``hasattr``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from connectors.base import connector_class, load_registry

ROOT = Path(__file__).resolve().parents[1]
CORE = ("engine", "handoff", "app", "delivery", "writes", "page")  # writes/page: once they exist
POLICY = sorted((ROOT / "mappings").glob("*.py"))
ENGINE = [p for p in (ROOT / "syncd" / f"{name}.py" for name in CORE) if p.exists()]
# The command line, the sandbox and the demo take their services from the connector registry
# (each connector names its fake, each fake its part of the seeded world, connectors/<kind>/seed.py).
SANDBOX = [
    ROOT / "syncd" / "cli.py",
    ROOT / "syncd" / "demo.py",
    *sorted((ROOT / "syncd" / "sandbox").glob("*.py")),
]


def service_words() -> re.Pattern[str]:
    registry = load_registry()
    words = set(registry) | {connector_class(kind, registry).display_name for kind in registry}
    return re.compile("|".join(re.escape(w) for w in sorted(words) if w), re.I)


def docstring_lines(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.add(first.lineno)
    return out


def named_services(path: Path, words: re.Pattern[str]) -> list[str]:
    """``file:line: token`` for each code token that names a service."""
    text = path.read_text(encoding="utf-8")
    docs = docstring_lines(ast.parse(text))
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start[0] in docs):
            continue
        if words.search(tok.string):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string[:60]}")
    return found


def test_the_registered_services_are_known():
    words = service_words()
    assert words.search("zendesk") and words.search("GitHub")


def test_the_sandbox_and_the_demo_are_checked():
    names = {str(p.relative_to(ROOT)) for p in SANDBOX}
    assert {"syncd/demo.py", "syncd/sandbox/seed.py", "syncd/sandbox/harness.py", "syncd/sandbox/world.py"} <= names


@pytest.mark.parametrize("path", POLICY + ENGINE + SANDBOX, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_service_is_named_outside_its_connector(path):
    assert named_services(path, service_words()) == []


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_capabilities_are_declared_not_probed(path):
    assert "hasattr(" not in path.read_text(encoding="utf-8")
