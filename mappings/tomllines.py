"""Where each key of a TOML document is written (tomllib does not say).

A line scanner, not a parser: the document has already been parsed by
tomllib, so it only has to follow table headers, arrays of tables, dotted
keys, multi-line strings and multi-line arrays well enough to say on which
line a key (or the table holding it) appears. Keys inside inline tables and
list items resolve to the line of the key that holds them.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

_KEY_PART = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*')


def _split_key(text: str) -> tuple[str, ...] | None:
    """``a."b.c".d`` → ("a", "b.c", "d"); None if it is not a key."""
    parts, pos = [], 0
    while True:
        found = _KEY_PART.match(text, pos)
        if not found:
            return None
        parts.append(next(g for g in found.groups() if g is not None))
        pos = found.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _scan_value(text: str, state: dict[str, Any]) -> None:
    """Follow strings and brackets through ``text``, updating ``state`` (quote, depth)."""
    i = 0
    while i < len(text):
        quote = state["quote"]
        if quote:
            if quote in ('"""', "'''"):
                end = text.find(quote, i)
                if end < 0:
                    return
                i = end + 3
                state["quote"] = None
                continue
            ch = text[i]
            if quote == '"' and ch == "\\":
                i += 2
                continue
            if ch == quote:
                state["quote"] = None
            i += 1
            continue
        if text.startswith(('"""', "'''"), i):
            state["quote"] = text[i : i + 3]
            i += 3
            continue
        ch = text[i]
        if ch in "\"'":
            state["quote"] = ch
        elif ch in "[{":
            state["depth"] += 1
        elif ch in "]}":
            state["depth"] -= 1
        elif ch == "#":
            return
        i += 1
    if state["quote"] in ('"', "'"):
        state["quote"] = None  # single-line strings end with the line


def key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Every table and key path in ``text`` → the line (1-based) where it is written.

    Paths are tuples of key names, with the item index after the name of an
    array of tables: ``[[acceptance.bug.criteria]]`` (the second one) is
    ``("acceptance", "bug", "criteria", 1)``.
    """
    lines: dict[tuple[Any, ...], int] = {}
    aot: dict[tuple[str, ...], int] = {}  # array-of-tables name path -> current index
    table: tuple[Any, ...] = ()
    state: dict[str, Any] = {"quote": None, "depth": 0}
    for number, raw in enumerate(text.splitlines(), 1):
        if state["quote"] or state["depth"] > 0:
            _scan_value(raw, state)
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = re.match(r"^\[\[\s*(.+?)\s*\]\]\s*(#.*)?$", stripped) or re.match(
            r"^\[\s*(.+?)\s*\]\s*(#.*)?$", stripped
        )
        if header:
            names = _split_key(header.group(1))
            if names is None:
                continue
            array = stripped.startswith("[[")
            if array:
                aot[names] = aot.get(names, -1) + 1
                # Sub-tables of an earlier item of this array belong to that item only.
                for other in [k for k in aot if len(k) > len(names) and k[: len(names)] == names]:
                    del aot[other]
            table = _with_indices(names, aot)
            for end in range(1, len(table) + 1):
                lines.setdefault(table[:end], number)
            continue
        key, sep, value = _split_assignment(raw)
        if not sep:
            continue
        names = _split_key(key)
        if names is None:
            continue
        for end in range(1, len(names) + 1):
            lines.setdefault(table + names[:end], number)
        _scan_value(value, state)
    return lines


def _with_indices(names: Sequence[str], aot: dict[tuple[str, ...], int]) -> tuple[Any, ...]:
    path: list[Any] = []
    for end in range(1, len(names) + 1):
        path.append(names[end - 1])
        if tuple(names[:end]) in aot:
            path.append(aot[tuple(names[:end])])
    return tuple(path)


def _split_assignment(line: str) -> tuple[str, str, str]:
    """Split ``key = value`` at the first ``=`` outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i], "=", line[i + 1 :]
        elif ch == "#":
            break
    return line, "", ""


def line_of(lines: dict[tuple[Any, ...], int], path: Sequence[Any]) -> int | None:
    """The line of ``path``, or of the nearest enclosing key or table written in the file."""
    path = tuple(path)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
