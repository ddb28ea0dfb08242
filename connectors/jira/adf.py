r"""Atlassian Document Format (ADF) to and from syncd's plain-text notes.

Jira Cloud's v3 API takes and returns rich text as ADF documents. syncd
writes notes as plain text with a little Markdown, so :func:`to_adf` turns
that into ADF and :func:`to_text` turns what people wrote in Jira back into
plain text.

``to_adf`` recognises only paragraphs, ``- `` and ``1.`` lists, fenced code
blocks, inline code, ``**bold**``, ``[label](url)`` and bare http(s) URLs.
Everything else stays literal text: a ticket subject copied into a note can
never become a mention, a macro or any other node. A backslash before ASCII
punctuation is an escape, as in CommonMark: ``\*\*x\*\*`` is the text
``**x**``, and the backslash is not written (ADF itself has no escapes, so
outside text escaped with :func:`mappings.escaping.escape` for ``"adf"``
arrives in Jira as the characters themselves). Code spans and code blocks
keep backslashes, as in CommonMark.

``to_text`` must read whatever Jira (or a person, or a broken payload) hands
it, so it never raises: unknown nodes fall back to the text of their
children and anything that is not the expected shape is skipped.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

__all__ = ["to_adf", "to_text", "validate_adf"]

# --- plain text -> ADF ----------------------------------------------------------

_FENCE_RE = re.compile(r"^\s*```\s*([A-Za-z0-9_+#.-]*)\s*$")
_BULLET_RE = re.compile(r"^\s*- (.*)$")
_ORDERED_RE = re.compile(r"^\s*(\d{1,9})\. (.*)$")

# Inline constructs, in order of precedence at the same position.
# An escaped character counts as one unit wherever a construct's content is matched.
_CHAR = r"(?:\\[!-/:-@\[-`{-~]|[^\\\n])"
_INLINE_RE = re.compile(
    r"\\(?P<esc>[!-/:-@\[-`{-~])"
    r"|`(?P<code>[^`\n]+)`"
    r"|\[(?P<label>(?:\\[!-/:-@\[-`{-~]|[^\[\]\n\\])+)\]\((?P<href>(?:https?://|mailto:)[^\s()\\]+)\)"
    r"|\*\*(?P<bold>(?=\S)" + _CHAR + r"(?:" + _CHAR + r"*?(?<=[^\s\\]))?)\*\*"
    r"|(?P<url>https?://[^\s<>()\[\]`\"']+)"
)
_URL_TRAILING = ".,;:!?"
_UNESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")


def to_adf(text: str) -> dict:
    """A plain-text note with light Markdown → an ADF ``doc`` node."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    content: list[dict] = []
    paragraph: list[str] = []
    list_kind: str | None = None
    list_items: list[str] = []
    list_start = 1

    def flush_paragraph() -> None:
        if paragraph:
            inline: list[dict] = []
            for n, line in enumerate(paragraph):
                if n:
                    inline.append({"type": "hardBreak"})
                inline.extend(_inline(line, ()))
            content.append({"type": "paragraph", "content": inline})
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_kind
        if list_kind:
            items = [{"type": "listItem", "content": [_paragraph(item)]} for item in list_items]
            node: dict[str, Any] = {"type": list_kind, "content": items}
            if list_kind == "orderedList" and list_start != 1:
                node["attrs"] = {"order": list_start}
            content.append(node)
            list_items.clear()
            list_kind = None

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_RE.match(line)
        bullet = _BULLET_RE.match(line)
        ordered = _ORDERED_RE.match(line)
        if fence:
            flush_paragraph()
            flush_list()
            code: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                code.append(lines[i])
                i += 1
            content.append(_code_block("\n".join(code), fence.group(1)))
        elif not line.strip():
            flush_paragraph()
            flush_list()
        elif bullet or ordered:
            flush_paragraph()
            kind = "bulletList" if bullet else "orderedList"
            if list_kind != kind:
                flush_list()
                list_kind = kind
                list_start = int(ordered.group(1)) if ordered else 1
            if bullet:
                list_items.append(bullet.group(1))
            elif ordered:
                list_items.append(ordered.group(2))
        else:
            flush_list()
            paragraph.append(line.rstrip())
        i += 1
    flush_paragraph()
    flush_list()
    return {"type": "doc", "version": 1, "content": content}


def _paragraph(text: str) -> dict:
    return {"type": "paragraph", "content": _inline(text, ())}


def _code_block(code: str, language: str) -> dict:
    node: dict[str, Any] = {"type": "codeBlock", "content": [{"type": "text", "text": code}] if code else []}
    if language:
        node["attrs"] = {"language": language}
    return node


def _inline(text: str, marks: tuple[dict, ...]) -> list[dict]:
    """Inline nodes for one line; ``marks`` apply to every node produced."""
    nodes: list[dict] = []
    pos = 0
    for m in _INLINE_RE.finditer(text):
        if m.group("url") is not None:
            url = m.group("url").rstrip(_URL_TRAILING)
            if len(url) <= len("https://"):
                continue
            end = m.start() + len(url)
        else:
            end = m.end()
        _add_text(nodes, text[pos : m.start()], marks)
        if m.group("esc") is not None:
            _add_text(nodes, m.group("esc"), marks)
        elif m.group("code") is not None:
            # ADF lets the code mark combine with link only.
            _add_text(nodes, m.group("code"), tuple(k for k in marks if k["type"] == "link") + ({"type": "code"},))
        elif m.group("label") is not None:
            link = {"type": "link", "attrs": {"href": m.group("href")}}
            _add_text(nodes, _UNESCAPE_RE.sub(r"\1", m.group("label")), marks + (link,))
        elif m.group("bold") is not None:
            if any(k["type"] == "strong" for k in marks):
                _add_text(nodes, _UNESCAPE_RE.sub(r"\1", m.group(0)), marks)
            else:
                nodes.extend(_inline(m.group("bold"), marks + ({"type": "strong"},)))
        else:
            _add_text(nodes, url, marks + ({"type": "link", "attrs": {"href": url}},))
        pos = end
    _add_text(nodes, text[pos:], marks)
    return _merge(nodes)


def _add_text(nodes: list[dict], text: str, marks: tuple[dict, ...]) -> None:
    if not text:
        return
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [dict(m) for m in marks]
    nodes.append(node)


def _merge(nodes: list[dict]) -> list[dict]:
    """Join neighbouring text nodes that carry the same marks."""
    out: list[dict] = []
    for node in nodes:
        if out and out[-1]["type"] == node["type"] == "text" and out[-1].get("marks") == node.get("marks"):
            out[-1] = {**out[-1], "text": out[-1]["text"] + node["text"]}
        else:
            out.append(node)
    return out


# --- checking what to_adf produces ---------------------------------------------

_BLOCKS = {"paragraph", "bulletList", "orderedList", "codeBlock"}
_CHILDREN = {
    "doc": _BLOCKS,
    "paragraph": {"text", "hardBreak"},
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "codeBlock": {"text"},
}
_MARKS = {"link", "code", "strong"}


def validate_adf(doc: Any) -> list[str]:
    """Problems with ``doc`` as an ADF document of the node types syncd writes.

    An empty list means it is well formed: a ``doc`` of version 1, only the
    node types and marks syncd produces, each where ADF allows it, text
    nodes non-empty, code marks combined with nothing but links, links with
    an http(s) or mailto href, and no marks in code blocks.
    """
    problems: list[str] = []
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return ["root is not {'type': 'doc', 'version': 1}"]
    _check_node(doc, "doc", problems, in_code=False)
    return problems


def _check_node(node: dict, path: str, problems: list[str], *, in_code: bool) -> None:
    kind = node.get("type")
    if kind == "text":
        text = node.get("text")
        if not isinstance(text, str) or not text:
            problems.append(f"{path}: text node without text")
        marks = node.get("marks", [])
        if in_code and marks:
            problems.append(f"{path}: marks inside a code block")
        if not isinstance(marks, list):
            problems.append(f"{path}: marks is not a list")
            return
        names = [m.get("type") if isinstance(m, dict) else None for m in marks]
        for m, name in zip(marks, names):
            if name not in _MARKS:
                problems.append(f"{path}: mark {name!r} not allowed")
            elif name == "link":
                href = (m.get("attrs") or {}).get("href")
                if not isinstance(href, str) or not re.match(r"^(https?://|mailto:)\S+$", href):
                    problems.append(f"{path}: link without an http(s)/mailto href")
        if len(set(names)) != len(names):
            problems.append(f"{path}: repeated mark")
        if "code" in names and set(names) - {"code", "link"}:
            problems.append(f"{path}: code mark combined with {sorted(set(names) - {'code', 'link'}, key=str)}")
        return
    if kind == "hardBreak":
        return
    allowed = _CHILDREN.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        problems.append(f"{path}: node type {kind!r} not allowed")
        return
    content = node.get("content", [])
    if not isinstance(content, list):
        problems.append(f"{path}: content is not a list")
        return
    if kind in ("bulletList", "orderedList") and not content:
        problems.append(f"{path}: empty list")
    if kind == "listItem" and (not content or content[0].get("type") != "paragraph"):
        problems.append(f"{path}: a list item must start with a paragraph")
    for n, child in enumerate(content):
        child_path = f"{path}/{n}"
        if not isinstance(child, dict) or child.get("type") not in allowed:
            ctype = child.get("type") if isinstance(child, dict) else type(child).__name__
            problems.append(f"{child_path}: {ctype!r} cannot be inside {kind}")
            continue
        _check_node(child, f"{child_path}:{child['type']}", problems, in_code=in_code or kind == "codeBlock")


# --- ADF -> plain text ----------------------------------------------------------

_INLINE_TYPES = {
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "date",
    "status",
    "placeholder",
    "mediaInline",
    "inlineExtension",
}
_MAX_DEPTH = 100


def to_text(adf: Any) -> str:
    """An ADF document (or any JSON-like value) → plain text. Never raises."""
    try:
        text = _render(adf, 0)
    except Exception:  # a last guard: notes must not stop a cycle
        return ""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _children(node: dict) -> list:
    content = node.get("content")
    return content if isinstance(content, list) else []


def _attrs(node: dict) -> dict:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _render(node: Any, depth: int) -> str:
    if depth > _MAX_DEPTH:
        return ""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return _join(node, depth, "\n\n")
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = _attrs(node)
    if kind == "text":
        return _text(node)
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        name = _str(attrs.get("text")) or _str(attrs.get("id")) or "someone"
        return name if name.startswith("@") else "@" + name
    if kind == "emoji":
        return _str(attrs.get("text")) or _str(attrs.get("shortName"))
    if kind in ("inlineCard", "blockCard", "embedCard"):
        data = attrs.get("data")
        return _str(attrs.get("url")) or (_str(data.get("url")) if isinstance(data, dict) else "")
    if kind == "status":
        return _str(attrs.get("text"))
    if kind == "date":
        return _date(attrs.get("timestamp"))
    if kind in ("media", "mediaInline"):
        return _str(attrs.get("alt"))
    if kind == "rule":
        return "---"
    if kind == "codeBlock":
        code = "".join(_render(c, depth + 1) for c in _children(node))
        return f"```\n{code}\n```"
    if kind in ("bulletList", "orderedList", "taskList", "decisionList"):
        return _list(node, kind, attrs, depth)
    if kind == "blockquote":
        inner = _join(_children(node), depth, "\n\n")
        return "\n".join("> " + line for line in inner.split("\n"))
    if kind == "table":
        return _table(node, depth)
    if kind in ("listItem", "taskItem", "decisionItem", "tableCell", "tableHeader"):
        return _join(_children(node), depth, "\n")
    if kind == "expand" or kind == "nestedExpand":
        title = _str(attrs.get("title"))
        body = _join(_children(node), depth, "\n\n")
        return f"{title}\n{body}" if title else body
    # paragraph, heading, doc, panel and anything unknown: the children's text.
    return _join(_children(node), depth, "\n\n")


def _join(children: list, depth: int, block_sep: str) -> str:
    """Inline children run together; block children are separated."""
    parts: list[str] = []
    run: list[str] = []
    for child in children:
        kind = child.get("type") if isinstance(child, dict) else None
        if isinstance(child, str) or kind in _INLINE_TYPES:
            run.append(_render(child, depth + 1))
            continue
        if run:
            parts.append("".join(run))
            run = []
        parts.append(_render(child, depth + 1))
    if run:
        parts.append("".join(run))
    return block_sep.join(p for p in parts if p.strip())


def _text(node: dict) -> str:
    text = _str(node.get("text"))
    marks = node.get("marks")
    if not text or not isinstance(marks, list):
        return text
    for mark in marks:
        if isinstance(mark, dict) and mark.get("type") == "link":
            href = _str(_attrs(mark).get("href"))
            if href and href != text:
                return f"{text} ({href})"
    if any(isinstance(mark, dict) and mark.get("type") == "code" for mark in marks):
        # Backticks keep inline code apart from the words around it.
        return f"`{text}`"
    return text


def _list(node: dict, kind: str, attrs: dict, depth: int) -> str:
    start = attrs.get("order")
    number = start if isinstance(start, int) and not isinstance(start, bool) and 0 <= start < 10**9 else 1
    lines: list[str] = []
    for item in _children(node):
        text = _render(item, depth + 1)
        if kind == "orderedList":
            prefix = f"{number}. "
            number += 1
        elif kind == "taskList" and isinstance(item, dict):
            prefix = "- [x] " if _attrs(item).get("state") == "DONE" else "- [ ] "
        else:
            prefix = "- "
        indent = " " * len(prefix)
        body = ("\n" + indent).join(text.split("\n"))
        lines.append(prefix + body)
    return "\n".join(lines)


def _table(node: dict, depth: int) -> str:
    rows = []
    for row in _children(node):
        if not isinstance(row, dict):
            continue
        cells = [_render(cell, depth + 2).replace("\n", " ") for cell in _children(row)]
        rows.append(" | ".join(cells))
    return "\n".join(r for r in rows if r.strip())


def _date(timestamp: Any) -> str:
    try:
        when = datetime.fromtimestamp(int(str(timestamp)) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return _str(timestamp)
    return when.strftime("%Y-%m-%d")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
