"""Make outside text inert before it is inserted into something syncd writes.

A ticket subject, an issue title, a customer's organisation or a workflow
state name is written by somebody else. Copied into a note or a comment it
must read as the same words and do nothing else: no markup, no mention that
pings people (``@user``, ``@channel``), no HTML, image or link, and nothing
that syncd itself would later read as one of its markers
(``syncd:<20 hex>``, see :data:`connectors.base.MARKER_RE`).

Three target formats:

``plain``
    Zendesk internal notes and fields, Linear attachment titles, Jira remote
    link titles. One line; control and bidirectional-override characters
    removed; markers, mentions and bare links defused with an invisible
    WORD JOINER (U+2060) so the text still reads the same.
``markdown``
    Linear and GitHub comments. ``plain``, then every ASCII punctuation
    character that Markdown could read is backslash-escaped (CommonMark
    allows escaping any of them), and ``#123`` references are defused.
``adf``
    Text that :func:`connectors.adf.to_adf` turns into a Jira document. That
    converter has no escape syntax, so the few constructs it recognises
    (code spans, ``**bold**``, links, list and fence lines) are broken
    instead.

Values whose name ends in ``_url`` are URLs that syncd means to show: they
are kept when they are plain http(s) URLs and defused like text otherwise.

Pure: strings in, strings out.
"""

from __future__ import annotations

import re
from typing import Mapping

FORMATS = ("plain", "markdown", "adf")

WORD_JOINER = "\u2060"
# The longest piece of outside text one value may put into a note.
MAX_VALUE_LENGTH = 500
ELLIPSIS = "…"

# Controls (tab and line breaks become spaces first), bidi embeddings,
# overrides and isolates, which can make a line read differently from
# what it says, and byte-order marks.
_INVISIBLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACE_RE = re.compile(r"\s+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

# What must not survive in any format.
_MARKER_RE = re.compile(r"(?i)(syncd)(\s*:)")
_MENTION_RE = re.compile(r"@(?=[\w.-])")
_SCHEME_RE = re.compile(r"(?i)\b(mailto|javascript|data|vbscript)(:)")
_SLASHES_RE = re.compile(r":(?=\s*//)")
_WWW_RE = re.compile(r"(?i)\b(www)(\.)")

_MD_PUNCT_RE = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&:\"'=$%^,;?/])")
_MD_ISSUE_REF_RE = re.compile(r"#(?=\d)")

_ADF_LINE_START_RE = re.compile(r"^(\s*)(?=-\s|\d+\.\s|```)")
_URL_RE = re.compile(r"^https?://[^\s<>()\[\]{}\"'`\\|^]+$")


def escape(value: object, fmt: str = "plain") -> str:
    """``value`` as inert text for ``fmt`` ("plain", "markdown" or "adf")."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown text format {fmt!r} (one of {', '.join(FORMATS)})")
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if fmt == "adf":  # before the mention check: U+02CB is a letter
        text = text.replace("`", "\u02cb")  # MODIFIER LETTER GRAVE ACCENT: looks alike, opens no code span
    text = _plain(text)
    if fmt == "markdown":
        text = _MD_PUNCT_RE.sub(r"\\\1", text)
        text = _MD_ISSUE_REF_RE.sub("#" + WORD_JOINER, text)
    elif fmt == "adf":
        text = re.sub(r"\*(?=\*)", "*" + WORD_JOINER, text)  # no ** pair: no bold
        text = _ADF_LINE_START_RE.sub(r"\1" + WORD_JOINER, text)
    return text


def escape_url(value: object, fmt: str = "plain") -> str:
    """A URL syncd means to show, kept as it is when it is a plain http(s) URL."""
    text = value if isinstance(value, str) else ""
    text = text.strip()
    if _URL_RE.match(text) and len(text) <= 2048:
        return text
    return escape(text, fmt)


def escape_values(values: Mapping[str, object], fmt: str = "plain") -> dict[str, object]:
    """Template values made inert: ``*_url`` as URLs, strings as text, numbers kept."""
    out: dict[str, object] = {}
    for name, value in values.items():
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
        elif name.endswith("_url"):
            out[name] = escape_url(value, fmt)
        else:
            out[name] = escape(value, fmt)
    return out


def _plain(text: str) -> str:
    text = _SURROGATE_RE.sub("\ufffd", text)
    text = _SPACE_RE.sub(" ", text)
    text = _INVISIBLE_RE.sub("", text).strip()
    if len(text) > MAX_VALUE_LENGTH:
        text = text[:MAX_VALUE_LENGTH - 1].rstrip() + ELLIPSIS
    text = _MARKER_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    text = _MENTION_RE.sub("@" + WORD_JOINER, text)
    text = _SLASHES_RE.sub(":" + WORD_JOINER, text)
    text = _SCHEME_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    return _WWW_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
