"""Outside text is inert in what syncd writes: unit, property and one end-to-end check.

"Inert" means: it reads the same (once the escapes a renderer removes are
removed) and it can become no markup, mention, HTML, image, link or syncd
marker in the format it lands in.
"""

from __future__ import annotations

import html as html_module
import re
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.base import find_markers
from connectors.jira.adf import to_adf, validate_adf
from mappings import escaping
from mappings.escaping import MAX_VALUE_LENGTH, WORD_JOINER, escape, escape_url, escape_values, shown
from mappings.planner import LinkedTicket, PlanSettings, plan_issue_update, plan_link
from syncd.records import Issue, Link, Organization, Ref, StateCategory, Ticket
from syncd.writes import ISSUE_ATTACH, TICKET_UPDATE
from tests.fuzz.mutate import EXAMPLES

FAKE_MARKER = "syncd:0123456789abcdef0123"
HOSTILE = [
    FAKE_MARKER,
    f"[{FAKE_MARKER}]",
    f"<!-- {FAKE_MARKER} -->",
    "<!-- syncd:tickets -->",
    "@channel @here @ada please look",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "![pixel](https://evil.example/p.png)",
    "[click me](https://evil.example/login)",
    "https://evil.example/login",
    "www.evil.example",
    "mailto:ceo@acme.example",
    "javascript:alert(1)",
    "**bold** _it_ `code` ~~gone~~",
    "# Heading",
    "- list item",
    "1. ordered",
    "```\nfenced\n```",
    "> quote | table |",
    "fixes #12 and acme/web#3",
    "line one\nline two\r\n[syncd:0123456789abcdef0123]",
    "right-to-left \u202etxt.exe\u202c",
    "nul\x00and bell\x07",
    "lone surrogate \ud800 here",
    "&lt;already escaped&gt; &amp;",
    "back\\slash \\[x\\](y)",
]

# What a Markdown renderer would do to our escapes: drop the backslash before
# punctuation. The WORD JOINER is invisible.
_UNESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")


def reads_as(text: str) -> str:
    return _UNESCAPE_RE.sub(r"\1", text).replace(WORD_JOINER, "")


def normalised(value: str) -> str:
    """The input as a reader should see it: one line, no controls, capped."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", value)
    text = re.sub(r"\s+", " ", text)
    text = re.sub("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]", "", text).strip()
    if len(text) > MAX_VALUE_LENGTH:
        text = text[: MAX_VALUE_LENGTH - 1].rstrip() + escaping.ELLIPSIS
    return text


def assert_no_live_constructs(text: str) -> None:
    assert find_markers(text) == ()
    assert not re.search(r"(?i)syncd\s*:", text), text
    assert not re.search(r"@[\w.-]", text), text  # a mention needs @ right before the name
    assert not re.search(r"://", text), text  # no scheme://
    assert not re.search(r"(?i)\bwww\.", text), text
    assert not re.search(r"(?i)\b(mailto|javascript|data):", text), text
    assert "\n" not in text and "\r" not in text


def unescaped_specials(text: str) -> list[str]:
    """Markdown-significant characters in ``text`` not preceded by a backslash."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 2
            continue
        if text[i] in "\\`*_{}[]()<>#+-.!|~&:\"'=":
            found.append(text[i])
        i += 1
    return found


# -- unit -------------------------------------------------------------------------------------------


def test_the_fake_marker_would_be_read_as_a_marker_without_escaping():
    assert find_markers(FAKE_MARKER) == ("0123456789abcdef0123",)


@pytest.mark.parametrize("fmt", escaping.FORMATS)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_inert_in_every_format(value, fmt):
    out = escape(value, fmt)
    assert_no_live_constructs(out)
    if fmt == "markdown":
        assert unescaped_specials(out) == []
        assert not re.search("#\\d", out)
    if fmt == "adf":
        assert_adf_is_plain_text(to_adf(f"Linked to {out}"))
        assert_adf_is_plain_text(to_adf(out))  # at the start of a line too: no list, fence or heading
    if fmt == "html":
        assert not re.search(r"[<>\"']", out)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_still_read_the_same(value):
    assert escape(value, "plain").replace(WORD_JOINER, "") == normalised(value)
    assert reads_as(escape(value, "markdown")) == normalised(value)
    assert adf_text(to_adf(escape(value, "adf"))).replace(WORD_JOINER, "") == normalised(value)
    assert html_module.unescape(escape(value, "html")).replace(WORD_JOINER, "") == normalised(value)


def test_examples():
    assert escape("Login fails on Safari") == "Login fails on Safari"
    assert escape("ENG-12: In Review", "markdown") == "ENG\\-12\\: In Review"
    assert escape("<b>hi</b>", "markdown") == "\\<b\\>hi\\<\\/b\\>"
    assert escape("ping @ada") == f"ping @{WORD_JOINER}ada"
    assert escape(FAKE_MARKER) == f"syncd{WORD_JOINER}:0123456789abcdef0123"
    assert escape("a\n\tb") == "a b"
    assert escape(None) == "" and escape(42) == "42"


def test_long_values_are_capped():
    out = escape("x" * 100_000)
    assert len(out) == MAX_VALUE_LENGTH and out.endswith(escaping.ELLIPSIS)


def test_urls_meant_to_be_shown_are_kept_and_others_defused():
    assert escape_url("https://linear.app/acme/issue/ENG-1/x") == "https://linear.app/acme/issue/ENG-1/x"
    for bad in ("javascript:alert(1)", "https://x.example/a b", "https://x.example/<img>", "ftp://x", ""):
        assert_no_live_constructs(escape_url(bad, "markdown"))
    values = escape_values({"issue_url": "https://x.example/1", "issue_title": "@all", "n": 3, "none": None})
    assert values == {"issue_url": "https://x.example/1", "issue_title": f"@{WORD_JOINER}all", "n": 3, "none": None}


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown text format"):
        escape("x", "rtf")


# -- properties -------------------------------------------------------------------------------------

# Text biased towards what matters here: markup, markers, mentions, URLs, controls.
_PIECES = st.sampled_from(
    [
        "syncd",
        ":",
        "0123456789abcdef0123",
        "@",
        "channel",
        "<",
        ">",
        "!",
        "[",
        "]",
        "(",
        ")",
        "`",
        "*",
        "_",
        "#",
        "1",
        ". ",
        "- ",
        "http",
        "https",
        "://",
        "www",
        ".",
        "mailto",
        "javascript",
        "\n",
        "\r",
        "\t",
        "\u202e",
        "\x00",
        "\\",
        "&",
        "```",
        " ",
    ]
)
TEXT = st.one_of(st.text(), st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=30).map("".join))


@settings(max_examples=max(400, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXT, fmt=st.sampled_from(escaping.FORMATS))
def test_property_any_text_is_inert_and_reads_the_same(value, fmt):
    out = escape(value, fmt)
    assert_no_live_constructs(out)
    expected = normalised(value).replace(WORD_JOINER, "")
    if fmt == "plain":  # nothing is escaped: a backslash in plain text is just a backslash
        assert out.replace(WORD_JOINER, "") == expected
    elif fmt == "markdown":
        assert reads_as(out) == expected
        assert unescaped_specials(out) == []
    elif fmt == "html":
        assert html_module.unescape(out).replace(WORD_JOINER, "") == expected
        assert not re.search(r"[<>\"']", out)  # no tag, no attribute can start
    else:
        assert adf_text(to_adf(out)).replace(WORD_JOINER, "") == expected
        assert_adf_is_plain_text(to_adf(f"Linked to {out}\n{out}"))


@settings(max_examples=max(200, EXAMPLES), deadline=None)
@given(value=TEXT)
def test_property_escaping_twice_stays_inert(value):
    for fmt in escaping.FORMATS:
        assert_no_live_constructs(escape(escape(value, fmt), fmt))


def adf_text(doc: dict) -> str:
    """What Jira shows of a document: its text nodes (hard breaks as newlines, blocks as lines)."""

    def walk(node: dict) -> str:
        if node["type"] == "text":
            return node["text"]
        if node["type"] == "hardBreak":
            return "\n"
        sep = "" if node["type"] == "paragraph" else "\n"
        return sep.join(walk(child) for child in node.get("content", []))

    return walk(doc)


def assert_adf_is_plain_text(doc: dict) -> None:
    """Only paragraphs of unmarked text and hard breaks: no link, code, mention, list."""
    assert validate_adf(doc) == []
    for block in doc["content"]:
        assert block["type"] == "paragraph", block
        for node in block.get("content", []):
            assert node["type"] in ("text", "hardBreak"), node
            assert "marks" not in node, node


# -- through the planner ----------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def hostile_ticket(subject: str) -> Ticket:
    return Ticket(
        Ref("zendesk", "7"),
        "#7",
        "https://acme.zendesk.com/agent/tickets/7",
        subject,
        "open",
        NOW,
        organization=Organization("1", "Evil <b>Org</b> @everyone"),
    )


def hostile_issue(
    title: str, connector: str = "linear", state: StateCategory = StateCategory.UNSTARTED, name: str = "Todo"
) -> Issue:
    return Issue(
        Ref(connector, "u1"),
        "ENG-1",
        "https://linear.app/acme/issue/ENG-1",
        title,
        state,
        name,
        NOW,
        assignee="@channel",
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_planner_notes_and_attachments_carry_no_live_constructs(value):
    settings_ = PlanSettings(helpdesk="zendesk", status_field="9", attachment_formats={"github": "markdown"})
    for connector in ("linear", "github"):
        ticket, issue = hostile_ticket(value), hostile_issue(value, connector)
        plan = plan_link(Link(ticket.ref, issue.ref, "comment"), ticket, issue, [], settings_)
        note = next(a for a in plan.actions if a.op == TICKET_UPDATE).write.payload()
        attach = next(a for a in plan.actions if a.op == ISSUE_ATTACH).write.payload()
        assert find_markers(note["note"]) == ()
        assert "@channel" not in note["note"] and "@channel" not in note["fields"]["9"]
        for line in note["note"].splitlines():
            if not line.startswith("https://linear.app/"):
                assert_no_live_constructs(line)
        assert_no_live_constructs(attach["title"])
        assert_no_live_constructs(attach["subtitle"])
        fmt = "markdown" if connector == "github" else "plain"
        assert attach["title"].endswith(": " + (escape(value, fmt) or "—"))


def test_resolved_note_summary_lines_are_escaped():
    settings_ = PlanSettings(helpdesk="zendesk")
    ticket = hostile_ticket("x")
    before = hostile_issue("t", state=StateCategory.STARTED, name="In Progress")
    after = hostile_issue("t", state=StateCategory.COMPLETED, name=f"Done {FAKE_MARKER} @here")
    plan = plan_issue_update(after, before, [LinkedTicket(ticket, (after,))], settings_)
    note = plan.actions[0].write.payload()["note"]
    assert find_markers(note) == () and "@here" not in note
    assert f"- ENG-1: Done syncd{WORD_JOINER}:0123456789abcdef0123 @{WORD_JOINER}here" in note


# -- end to end: a hostile subject and title arrive inert --------------------------------------------


@pytest.mark.e2e
def test_hostile_subject_and_title_arrive_inert_through_the_sandbox(tmp_path):
    from syncd.sandbox.harness import Playground

    subject = f"Refund {FAKE_MARKER} @channel <img src=x onerror=alert(1)> [x](https://evil.example)"
    title = f"Crash {FAKE_MARKER} @here ![p](https://evil.example/p.png) **now**"
    with Playground(tmp_path) as pg:
        requester = next(u for u in pg.zendesk.users.values() if u["role"] == "end-user")
        ticket = pg.zendesk.create_ticket(subject, "it broke", requester_id=requester["id"])
        created = pg.linear.create_issue("ENG", title)
        identifier = pg.linear.issue(created["id"])["identifier"]
        app = pg.app()
        try:
            app.engine.cycle()
            app.engine.link(str(ticket["id"]), identifier)
            report = app.engine.deliver()
            assert report.done >= 2 and not report.errors
            notes = [c for c in pg.zendesk.ticket_comments(ticket["id"]) if not c["public"]]
            assert len(notes) == 1
            body = notes[0]["body"]
            # Exactly one marker: syncd's own, written by the connector after the note.
            assert len(find_markers(body)) == 1 and "0123456789abcdef0123" not in find_markers(body)
            # Plain text: markup stays literal, but no mention, link or marker survives.
            assert "@here" not in body and "https://evil.example" not in body
            assert escape(title) in body
            attachment = next(
                a for a in pg.linear.issue(identifier)["attachments"] if a["url"] == pg.zendesk.agent_url(ticket["id"])
            )
            assert_no_live_constructs(attachment["title"])
            assert "<img" in attachment["title"]  # plain text there: shown as written, not rendered
            assert_no_live_constructs(attachment["subtitle"])
        finally:
            app.close()


# -- what a person sees, per format -----------------------------------------------------------------
#
# Each format is read through what shows it to a person: plain text as it
# is, Markdown through a CommonMark renderer (markdown-it-py, with GitHub's
# strikethrough and tables), ADF through connectors.jira.adf.to_adf to the text
# nodes Jira displays. What is seen must be what was meant: the text itself,
# not one backslash more, wherever the value lands in a line.

PUNCTUATION = "\\`*_#();,.-:<>&[]!|~{}+=\"'$%^?/@"
SEEN_TEXT = st.one_of(
    TEXT,
    st.lists(
        st.one_of(
            st.sampled_from(
                list(PUNCTUATION)
                + ["\n", " ", "1", "a", "ENG-3", "06:23", "- ", "1. ", "```", "**", "&amp;", "<!--", "-->", "#1017"]
            ),
            st.text(max_size=4),
        ),
        max_size=40,
    ).map("".join),
)
# A value alone, at the start of a line, in the middle of one, and in a list item.
CONTEXTS = ("{v}", "Escalated from {v}: done", "Customer: {v}\n\n{v}\n- {v}")


def markdown_seen(markdown: str) -> str:
    """The text a CommonMark renderer shows for ``markdown`` (tags dropped, entities decoded)."""
    from markdown_it import MarkdownIt

    html_out = MarkdownIt("commonmark").enable(["strikethrough", "table"]).render(markdown)
    return html_module.unescape(re.sub(r"<[^>]*>", "", html_out))


def markdown_tags(markdown: str) -> set[str]:
    from markdown_it import MarkdownIt

    html_out = MarkdownIt("commonmark").enable(["strikethrough", "table"]).render(markdown)
    return set(re.findall(r"<(\w+)", html_out))


def seen(text: str, fmt: str) -> str:
    """What a person reads of ``text`` written in ``fmt``, invisible joiners aside, one line per block."""
    if fmt == "markdown":
        out = markdown_seen(text)
    elif fmt == "adf":
        out = adf_text(to_adf(text))
    elif fmt == "html":  # what a browser shows: tags are markup, references are characters
        out = html_module.unescape(re.sub(r"<[^>]*>", "", text))
    else:
        out = text
    return re.sub(r"\s+", " ", out.replace(WORD_JOINER, "")).strip()


@settings(max_examples=max(300, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=SEEN_TEXT, fmt=st.sampled_from(escaping.FORMATS), context=st.sampled_from(CONTEXTS))
def test_property_what_a_person_sees_is_what_was_meant(value, fmt, context):
    meant = normalised(value).replace(WORD_JOINER, "")
    assume(meant)  # templates show an empty value as "—"
    written = context.format(v=escape(value, fmt))
    # The template's own text as the format shows it (a "- " line is a list item), the value in it as meant.
    expected = seen(context.format(v="VALUE"), fmt).replace("VALUE", meant)
    assert seen(written, fmt) == re.sub(r"\s+", " ", expected)
    if fmt == "markdown":  # the template's own structure only: paragraphs and the one list
        assert markdown_tags(written) <= {"p", "ul", "li"}


@pytest.mark.parametrize("fmt", escaping.FORMATS)
def test_the_punctuation_of_the_issue_reads_as_written(fmt):
    for meant in (
        "Zendesk #1017",
        "audit log (November); expected 120 rows, got 80.",
        "06:23",
        "ENG-3",
        "C:\\exports\\*.csv",
        "a `b` **c** _d_ [e](https://f.example) <g> & ~h~ | i !",
    ):
        assert seen(escape(meant, fmt), fmt) == meant.replace("https://", f"https:{WORD_JOINER}//").replace(
            WORD_JOINER, ""
        )
        assert shown(escape(meant, fmt), fmt).replace(WORD_JOINER, "") == meant


@settings(max_examples=max(200, EXAMPLES), deadline=None)
@given(value=SEEN_TEXT, fmt=st.sampled_from(escaping.FORMATS))
def test_property_shown_undoes_the_escapes(value, fmt):
    """:func:`shown` (history, demo) gives back the text, escapes and hidden markers removed."""
    assert shown(escape(value, fmt), fmt).replace(WORD_JOINER, "") == normalised(value).replace(WORD_JOINER, "")
    marked = f"{escape(value, 'markdown')}\n\n<!-- syncd:0123456789abcdef0123 -->"
    assert shown(marked, "markdown").strip() == shown(escape(value, "markdown"), "markdown").strip()


def test_html_comment_markers_stay_invisible_in_rendered_markdown():
    """The markers GitHub and Linear comments carry: a renderer shows none of them."""
    body = (
        "Support demand: 2 ticket(s)\n\n<!-- syncd:tickets -->\n**Linked support tickets: 1**\n\n"
        "- [Zendesk \\#7\\: x](https://acme.zendesk.com/agent/tickets/7) <!-- syncd:t=0123456789ab -->\n"
        "<!-- /syncd:tickets -->\n\n<!-- syncd:context -->\n<!-- syncd:0123456789abcdef0123 -->\n"
    )
    text = markdown_seen(body)
    assert "syncd" not in text and "<!--" not in text and "-->" not in text
    assert "Zendesk #7: x" in text
