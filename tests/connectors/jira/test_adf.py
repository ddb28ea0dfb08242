"""ADF conversion: plain-text notes to ADF and back, on examples, real payloads and generated input."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.jira.adf import to_adf, to_text, validate_adf


def text_node(text: str, *marks: dict) -> dict:
    node = {"type": "text", "text": text}
    if marks:
        node["marks"] = list(marks)
    return node


def doc(*content: dict) -> dict:
    return {"type": "doc", "version": 1, "content": list(content)}


# --- to_adf on examples -----------------------------------------------------------


def test_paragraphs_and_line_breaks():
    result = to_adf("first line\nsecond line\n\nnew paragraph")
    assert result == doc(
        {"type": "paragraph", "content": [text_node("first line"), {"type": "hardBreak"}, text_node("second line")]},
        {"type": "paragraph", "content": [text_node("new paragraph")]},
    )
    assert validate_adf(result) == []


def test_lists_code_links_and_bold():
    note = (
        "Linked to **ENG-7** by [the bot](https://syncd.example/bot) see https://acme.zendesk.com/agent/tickets/42.\n"
        "\n- one\n- `two`\n\n3. three\n4. four\n\n```sql\nselect 1;\n```"
    )
    result = to_adf(note)
    assert validate_adf(result) == []
    para, bullets, ordered, code = result["content"]
    assert text_node("ENG-7", {"type": "strong"}) in para["content"]
    assert text_node("the bot", {"type": "link", "attrs": {"href": "https://syncd.example/bot"}}) in para["content"]
    url = "https://acme.zendesk.com/agent/tickets/42"
    assert text_node(url, {"type": "link", "attrs": {"href": url}}) in para["content"]
    assert para["content"][-1] == text_node(".")  # trailing punctuation is not part of a bare URL
    assert bullets["type"] == "bulletList" and len(bullets["content"]) == 2
    assert bullets["content"][1]["content"][0]["content"] == [text_node("two", {"type": "code"})]
    assert ordered == {"type": "orderedList", "attrs": {"order": 3}, "content": ordered["content"]}
    assert code == {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [text_node("select 1;")]}


def test_code_inside_bold_drops_strong_as_adf_requires():
    result = to_adf("**a `b` c**")
    assert validate_adf(result) == []
    assert result["content"][0]["content"][1] == text_node("b", {"type": "code"})


@pytest.mark.parametrize(
    "hostile",
    [
        "@admin please look",
        "<script>alert(1)</script>",
        '{"type": "mention", "attrs": {"id": "123"}}',
        "[click](javascript:alert(1))",
        "::: panel :::",
        "<!-- syncd:0123456789abcdef0123 -->",
    ],
)
def test_text_is_never_interpreted_beyond_the_supported_markup(hostile):
    result = to_adf(f"Ticket subject: {hostile}")
    assert validate_adf(result) == []
    nodes = result["content"][0]["content"]
    assert {n["type"] for n in nodes} == {"text"}
    assert all("link" not in json.dumps(n.get("marks", [])) for n in nodes)
    assert "".join(n["text"] for n in nodes) == f"Ticket subject: {hostile}"


def test_unclosed_markup_stays_literal():
    result = to_adf("**not bold and `not code and [x](not a url)")
    assert result["content"][0]["content"] == [text_node("**not bold and `not code and [x](not a url)")]


def test_unterminated_fence_runs_to_the_end_and_empty_input_is_an_empty_doc():
    assert to_adf("```\nline")["content"] == [{"type": "codeBlock", "content": [text_node("line")]}]
    assert to_adf("") == doc()
    assert validate_adf(to_adf("```\n```")) == []


def test_validator_catches_what_adf_forbids():
    assert validate_adf({"type": "doc"}) == ["root is not {'type': 'doc', 'version': 1}"]
    assert validate_adf(doc({"type": "paragraph", "content": [text_node("")]}))
    assert validate_adf(doc({"type": "paragraph", "content": [{"type": "mention", "attrs": {"id": "1"}}]}))
    assert validate_adf(doc({"type": "paragraph", "content": [text_node("x", {"type": "code"}, {"type": "strong"})]}))
    assert validate_adf(
        doc({"type": "paragraph", "content": [text_node("x", {"type": "link", "attrs": {"href": "javascript:x"}})]})
    )
    assert validate_adf(doc(text_node("bare text at the top")))
    assert validate_adf(doc({"type": "bulletList", "content": []}))


# --- to_text on examples and real payloads ------------------------------------------


def test_to_text_of_rich_nodes():
    rich = doc(
        {"type": "heading", "attrs": {"level": 2}, "content": [text_node("Summary")]},
        {
            "type": "paragraph",
            "content": [
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Ana Diaz"}},
                text_node(" see "),
                {"type": "inlineCard", "attrs": {"url": "https://acme.atlassian.net/browse/ENG-1"}},
                {"type": "hardBreak"},
                {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}},
                {"type": "date", "attrs": {"timestamp": "1763726400000"}},
                text_node(" docs", {"type": "link", "attrs": {"href": "https://d.example"}}),
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [text_node("a")]},
                        {
                            "type": "bulletList",
                            "content": [
                                {
                                    "type": "listItem",
                                    "content": [{"type": "paragraph", "content": [text_node("nested")]}],
                                }
                            ],
                        },
                    ],
                }
            ],
        },
        {
            "type": "orderedList",
            "attrs": {"order": 5},
            "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [text_node("five")]}]}],
        },
        {"type": "codeBlock", "content": [text_node("x = 1")]},
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "content": [{"type": "paragraph", "content": [text_node("k")]}]},
                        {"type": "tableHeader", "content": [{"type": "paragraph", "content": [text_node("v")]}]},
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableCell", "content": [{"type": "paragraph", "content": [text_node("os")]}]},
                        {"type": "tableCell", "content": [{"type": "paragraph", "content": [text_node("linux")]}]},
                    ],
                },
            ],
        },
        {
            "type": "panel",
            "attrs": {"panelType": "info"},
            "content": [{"type": "paragraph", "content": [text_node("inside")]}],
        },
        {"type": "someFutureNode", "content": [{"type": "paragraph", "content": [text_node("kept")]}]},
    )
    assert to_text(rich) == (
        "Summary\n\n@Ana Diaz see https://acme.atlassian.net/browse/ENG-1\n🎉2025-11-21 docs (https://d.example)\n\n"
        "- a\n  - nested\n\n5. five\n\n```\nx = 1\n```\n\nk | v\nos | linux\n\ninside\n\nkept"
    )


def test_to_text_of_real_comments_and_descriptions(fixtures_dir):
    comments = json.loads((fixtures_dir / "jira/airbyte-source-jira/issue_comments.json").read_text())["comments"]
    assert to_text(comments[0]["body"]) == "Closed"
    assert to_text(comments[1]["body"]).startswith("Lorem ipsum dolor sit amet")
    issue = json.loads((fixtures_dir / "jira/airbyte-source-jira/issues.json").read_text())["issues"][0]
    assert to_text(issue["fields"]["description"]) == "Test issue"
    cli = json.loads((fixtures_dir / "jira/jira-cli-testdata/issue.json").read_text())
    assert to_text(cli["fields"]["description"]) == "Test description"


@pytest.mark.parametrize(
    "junk",
    [
        None,
        3,
        "plain",
        [],
        {},
        {"type": 5},
        {"content": "x"},
        {"type": "text", "text": None, "marks": "x"},
        {"type": "orderedList", "attrs": {"order": "z"}, "content": [1, None]},
        {"type": "mention", "attrs": []},
        {"type": "date", "attrs": {"timestamp": "x"}},
    ],
)
def test_to_text_tolerates_malformed_input(junk):
    assert isinstance(to_text(junk), str)


def test_to_text_survives_very_deep_nesting():
    node: dict = text_node("deep")
    for _ in range(5000):
        node = {"type": "blockquote", "content": [node]}
    assert isinstance(to_text(node), str)


# --- properties ------------------------------------------------------------------

WORD = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("abcdefghijKLMNOPQRSTxyz"),
    st.text(alphabet="abcxyzXYZ0123", max_size=6),
)
WORDS = st.lists(WORD, min_size=1, max_size=5)


@st.composite
def inline_piece(draw) -> tuple[str, list[str]]:
    words = draw(WORDS)
    kind = draw(st.sampled_from(["plain", "bold", "code", "link", "url"]))
    text = " ".join(words)
    if kind == "bold":
        return f"**{text}**", words
    if kind == "code":
        return f"`{text}`", words
    if kind == "link":
        return f"[{text}](https://example.com/{words[0]})", words
    if kind == "url":
        return f"https://{words[0]}.example.com/path", [words[0]]
    return text, words


@st.composite
def line(draw) -> tuple[str, list[str]]:
    pieces = draw(st.lists(inline_piece(), min_size=1, max_size=4))
    return " ".join(p for p, _ in pieces), [w for _, ws in pieces for w in ws]


@st.composite
def block(draw) -> tuple[str, list[str]]:
    kind = draw(st.sampled_from(["paragraph", "bullets", "ordered", "code"]))
    lines = draw(st.lists(line(), min_size=1, max_size=3))
    if kind == "paragraph":
        return "\n".join(t for t, _ in lines), [w for _, ws in lines for w in ws]
    if kind == "bullets":
        return "\n".join(f"- {t}" for t, _ in lines), [w for _, ws in lines for w in ws]
    if kind == "ordered":
        return "\n".join(f"{n}. {t}" for n, (t, _) in enumerate(lines, 1)), [w for _, ws in lines for w in ws]
    words = draw(st.lists(WORDS, min_size=1, max_size=3))
    return "```\n" + "\n".join(" ".join(ws) for ws in words) + "\n```", [w for ws in words for w in ws]


NOTES = st.lists(block(), min_size=1, max_size=5).map(
    lambda blocks: ("\n\n".join(t for t, _ in blocks), [w for _, ws in blocks for w in ws])
)


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(h == n for h in it) for n in needle)


@given(NOTES)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_keeps_the_words_in_order_and_the_adf_is_valid(note):
    text, words = note
    result = to_adf(text)
    assert validate_adf(result) == []
    back = to_text(result)
    assert _is_subsequence(words, re.findall(r"[A-Za-z0-9]+", back)), (text, back)


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_to_adf_is_valid_and_loses_no_words_for_any_text(text):
    result = to_adf(text)
    assert validate_adf(result) == []
    words = re.findall(r"[^\W_]+", text)
    assert _is_subsequence(words, re.findall(r"[^\W_]+", to_text(result)))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=10)
    | st.sampled_from(
        [
            "doc",
            "paragraph",
            "text",
            "mention",
            "bulletList",
            "orderedList",
            "listItem",
            "table",
            "tableRow",
            "codeBlock",
            "hardBreak",
            "inlineCard",
            "date",
            "attrs",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "content", "text", "attrs", "marks", "href", "order", "url", "timestamp", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=40,
)


@given(JSON)
@settings(max_examples=500)
def test_to_text_never_raises_on_json_like_input(value):
    assert isinstance(to_text(value), str)


def _mutations(node, rng_values):
    """Every way of replacing one value inside ``node`` by each of ``rng_values``."""
    if isinstance(node, dict):
        for key in list(node):
            for value in rng_values:
                yield lambda n=node, k=key, v=value: n.__setitem__(k, v)
            yield from _mutations(node[key], rng_values)
    elif isinstance(node, list):
        for i in range(len(node)):
            for value in rng_values:
                yield lambda n=node, k=i, v=value: n.__setitem__(k, v)
            yield from _mutations(node[i], rng_values)


def test_to_text_never_raises_on_mutated_real_adf(fixtures_dir):
    comments = json.loads((fixtures_dir / "jira/airbyte-source-jira/issue_comments.json").read_text())["comments"]
    issue = json.loads((fixtures_dir / "jira/airbyte-source-jira/issues.json").read_text())["issues"][0]
    originals = [c["body"] for c in comments] + [
        issue["fields"]["description"],
        to_adf("a **b** [c](https://d.e)\n- f"),
    ]
    replacements = [None, 0, -1, "", "x", [], {}, [None], {"type": "mention"}, True, 1e308]
    count = 0
    for original in originals:
        for index, _ in enumerate(_mutations(copy.deepcopy(original), replacements)):
            mutated = copy.deepcopy(original)
            list(_mutations(mutated, replacements))[index]()
            assert isinstance(to_text(mutated), str)
            count += 1
    assert count > 100
