"""Make outside text inert before it is inserted into something syncd writes.

A ticket subject, an issue title, a customer's organisation or a workflow
state name is written by somebody else. Copied into a note or a comment it
must read as the same words and do nothing else: no markup, no mention that
pings people (``@user``, ``@channel``), no HTML, image or link, and nothing
that syncd itself would later read as one of its markers
(``syncd:<20 hex>``, see :data:`connectors.base.MARKER_RE`).

Four target formats, each connector declares its own (``text_format``,
``attachment_format`` on trackers, ``text_format`` on the helpdesk):

``plain``
    Zendesk internal notes (sent as ``comment.body``, which Zendesk shows as
    written) and fields, Linear attachment titles, Jira remote link titles,
    issue titles. One line; control and bidirectional-override characters
    removed; markers, mentions and bare links defused with an invisible
    WORD JOINER (U+2060) so the text still reads the same. Nothing else is
    changed: a backslash here would be read as a backslash.
``markdown``
    Linear and GitHub comments and descriptions. ``plain``, then every ASCII
    punctuation character that Markdown could read is backslash-escaped
    (CommonMark allows escaping any of them, and a renderer removes the
    backslash), and ``#123`` references are defused.
``adf``
    Text that :func:`connectors.jira.adf.to_adf` turns into a Jira document.
    ``plain``, then the same backslash escapes as ``markdown``:
    ``to_adf`` reads them as CommonMark does, so the ADF text nodes hold
    the characters themselves and Jira shows no backslash.
``html``
    A helpdesk whose notes are HTML (Intercom's ``body``; Zendesk's
    ``html_body``, which syncd does not use). ``plain``, then ``& < > " '``
    as character references, which a browser shows as the characters.

:func:`shown` is the other direction: what a person reads of a text written
in a format (for ``syncd history``, the demo): the escapes and hidden markers
removed, the rest as it is.

Values whose name ends in ``_url`` are URLs that syncd means to show: they
are kept when they are plain http(s) URLs and defused like text otherwise.

Pure: strings in, strings out.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Mapping

FORMATS = ("plain", "markdown", "adf", "html")

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

# A backslash escape as CommonMark (and connectors.jira.adf.to_adf) reads it.
_UNESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_TAG_RE = re.compile(r"<[^>]*>")
_URL_RE = re.compile(r"^https?://[^\s<>()\[\]{}\"'`\\|^]+$")


def escape(value: object, fmt: str = "plain") -> str:
    """``value`` as inert text for ``fmt`` ("plain", "markdown" or "adf")."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown text format {fmt!r} (one of {', '.join(FORMATS)})")
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if len(text) <= _CACHED_CHARS:
        return _escaped(text, fmt)  # the same title or state, once for each of an issue's tickets
    return _escape_text(text, fmt)


# Texts up to this long are escaped once per distinct text (a bounded cache: a few MiB at most).
_CACHED_CHARS = 512


def _escape_text(text: str, fmt: str) -> str:
    text = _plain(text)
    if fmt in ("markdown", "adf"):
        text = _MD_PUNCT_RE.sub(r"\\\1", text)
    if fmt == "markdown":
        text = _MD_ISSUE_REF_RE.sub("#" + WORD_JOINER, text)
    if fmt == "html":
        text = html.escape(text)
    return text


_escaped = functools.lru_cache(maxsize=4096)(_escape_text)


def shown(text: str, fmt: str = "plain") -> str:
    """What a person reads of ``text`` written in ``fmt``: escapes and hidden markers removed.

    Meant for syncd's own writes (what :func:`escape` and the templates
    produce), shown where plain text is read: the history, the demo.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown text format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "plain":
        return text
    if fmt == "html":
        return html.unescape(_TAG_RE.sub("", _HTML_COMMENT_RE.sub("", text)))
    if fmt == "markdown":
        text = _HTML_COMMENT_RE.sub("", text)
    return _UNESCAPE_RE.sub(r"\1", text)


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
        text = text[: MAX_VALUE_LENGTH - 1].rstrip() + ELLIPSIS
    text = _MARKER_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    text = _MENTION_RE.sub("@" + WORD_JOINER, text)
    text = _SLASHES_RE.sub(":" + WORD_JOINER, text)
    text = _SCHEME_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
    return _WWW_RE.sub(lambda m: m.group(1) + WORD_JOINER + m.group(2), text)
