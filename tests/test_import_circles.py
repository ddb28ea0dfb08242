"""No import circles between the project's files.

The graph: one node per Python file of the project's packages, one edge per
import of another project file, wherever the import statement stands (module
level, inside a function, or under ``if TYPE_CHECKING:``), with ``from a
import b`` counting as an import of ``a/b.py`` when that file exists. A circle
is a strongly connected group of two or more files.

- Imports that run (everything but ``TYPE_CHECKING`` blocks): no circle
  anywhere.
- With the type-only imports too: no circle in the product (``syncd/`` but
  its sandbox, ``mappings/``, the connectors' own modules). The playground
  (``syncd/sandbox/`` and the connectors' fakes) is left out of this one:
  its server names the seed data only for a type.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("syncd", "connectors", "mappings", "tools")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def imports_of(module: str, *, typing: bool) -> set[str]:
    """The project files ``module`` imports; ``typing``: also those under ``if TYPE_CHECKING:``."""
    path = FILES[module]
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                if typing:
                    walk(child)
                for rest in child.orelse:
                    walk(rest)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.update(_imported(child, module, path.name == "__init__.py"))
                continue
            walk(child)

    walk(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in FILES and name != module}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more nodes (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def is_playground(module: str) -> bool:
    return module.startswith("syncd.sandbox") or module.endswith(".fake") or module.startswith("tools")


def test_the_circle_finder_finds_a_circle_and_only_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_project_s_imports():
    assert {"syncd.writes", "connectors.base"} <= imports_of("syncd.delivery", typing=False)
    # privacy.py names the handoff only for a type: seen with the type-only imports, not without
    assert "syncd.handoff" in imports_of("syncd.privacy", typing=True) - imports_of("syncd.privacy", typing=False)


def test_no_import_circle_between_files():
    graph = {module: imports_of(module, typing=False) for module in FILES}
    assert circles(graph) == []


def test_no_import_circle_in_the_product_counting_type_only_imports():
    product = [m for m in FILES if not is_playground(m)]
    graph = {m: {n for n in imports_of(m, typing=True) if not is_playground(n)} for m in product}
    assert circles(graph) == []
