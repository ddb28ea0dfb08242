"""The conversation mirror's rules (mapping files) and its pure planning: comment in, writes out."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mappings import files as mapping_files
from mappings.conversation import OFF, ConversationRule
from mappings.conversation_plan import (
    IssueSide,
    Mirrored,
    MirrorTarget,
    digest,
    plan_agent_note,
    plan_remark,
    privacy_problems,
    shortened,
)
from syncd.app import tracker_kinds
from syncd.errors import ConfigError
from syncd.records import (
    Comment,
    Customer,
    Issue,
    IssueRemark,
    Organization,
    Ref,
    StateCategory,
    Ticket,
)
from syncd.writes import MirrorComment, MirrorNote

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
ON = T0 - timedelta(days=1)  # when the rule was switched on
TRACKERS = {"linear": "linear"}
BOTH = ConversationRule("both", prefix="#eng", ignore=("ci-bot",))


def ticket(tid: str = "1", **kw) -> Ticket:
    base = dict(
        ref=Ref("desk", tid),
        key=f"#{tid}",
        url=f"https://desk.example/tickets/{tid}",
        subject="Export fails",
        status="open",
        updated_at=T0,
        requester=Customer("c1", "Dana Whitfield", "dana@acme.example", "o1"),
        organization=Organization("o1", "Acme Corp"),
    )
    return Ticket(**{**base, **kw})


def issue(public: bool = False, iid: str = "i1") -> Issue:
    return Issue(
        Ref("trk", iid),
        "ENG-8",
        "https://trk.example/ENG-8",
        "Export",
        StateCategory.STARTED,
        "In Progress",
        T0,
        public=public,
    )


def remark(body: str = "Fixed in 4.2, workaround: re-run with --chunked", **kw) -> IssueRemark:
    base = dict(
        id="c9",
        issue_key="ENG-8",
        body=body,
        created_at=T0,
        updated_at=T0,
        author_id="u7",
        author_name="Ana Engineer",
        url="https://trk.example/ENG-8#c9",
    )
    return IssueRemark(**{**base, **kw})


def note(body: str, **kw) -> Comment:
    base = dict(id="n1", body=body, public=False, author_id="a1", created_at=T0)
    return Comment(**{**base, **kw})


# -- the rules in the mapping files ---------------------------------------------------------------

ROUTE = '[routes.main]\ntracker = "linear"\nteam = "ENG"\n'


def load(tmp_path: Path, text: str):
    d = tmp_path / "m"
    d.mkdir()
    (d / "routes.toml").write_text(textwrap.dedent(text).lstrip("\n"))
    return d, mapping_files.load_mappings(d, trackers=TRACKERS, kinds=tracker_kinds())


def test_off_by_default(tmp_path):
    _, m = load(tmp_path, ROUTE)
    assert m.routes[0].conversation == OFF
    assert not OFF.to_ticket and not OFF.to_issue
    assert not m.mirrors_to_tickets("linear")


def test_a_rule_loads(tmp_path):
    _, m = load(
        tmp_path,
        ROUTE
        + '[routes.main.conversation]\ndirection = "both"\nprefix = "#eng"\nignore = ["ci-bot"]\n'
        + 'engineers = ["ana", 42]\nmax_length = 500\n',
    )
    rule = m.routes[0].conversation
    assert rule == ConversationRule("both", "#eng", None, (), ("ana", "42"), ("ci-bot",), 500)
    assert rule.to_ticket and rule.to_issue
    assert m.mirrors_to_tickets("linear") and not m.mirrors_to_tickets("other")


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            'direction = "sideways"',
            "routes.main.conversation.direction: must be 'none', 'to_ticket', 'to_issue' or 'both' (got \"sideways\")",
        ),
        (
            'direction = "to_issue"',
            "routes.main.conversation: an agent's notes go to the issues only when selected: give "
            'prefix = "#eng" or tag = "..." or set direction = "to_ticket"',
        ),
        (
            'direction = "to_ticket"\nprefix = "#eng"',
            "routes.main.conversation: prefix and tag select agents' notes for the issues, and direction "
            'does not send any there; set direction = "to_issue" or "both", or remove them',
        ),
        (
            'direction = "both"\ntag = "To Eng"',
            "routes.main.conversation.tag: must be one helpdesk tag: lower-case letters, digits, _, - or : "
            'without spaces, e.g. "syncd_promise_broken"',
        ),
        (
            'direction = "to_ticket"\nmax_length = 10',
            "routes.main.conversation.max_length: must be greater than or equal to 80 (got 10)",
        ),
    ],
)
def test_bad_rules_get_one_line(tmp_path, extra, line):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, ROUTE + "[routes.main.conversation]\n" + extra + "\n")
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(str(tmp_path / "m" / "routes.toml") + ":")
    assert problem.split(": ", 1)[1] == line


# -- issue -> ticket --------------------------------------------------------------------------------


def targets(*tickets: Ticket, rule: ConversationRule = BOTH) -> list[MirrorTarget]:
    return [MirrorTarget(t, rule, ON) for t in tickets]


def test_an_engineers_comment_reaches_each_linked_ticket_once_with_its_link():
    plan = plan_remark(remark(), issue(), None, targets(ticket("1"), ticket("2")))
    assert [(a.target, type(a.write)) for a in plan.actions] == [("1", MirrorNote), ("2", MirrorNote)]
    note_text = plan.actions[0].write.note
    assert note_text.startswith("Ana Engineer on ENG-8:\n")
    assert "re-run with --chunked" in note_text and note_text.endswith("https://trk.example/ENG-8#c9")
    assert plan.mark == Mirrored(digest(remark().body), author="Ana Engineer", url="https://trk.example/ENG-8#c9")
    # Planned again (a replayed page): the same keys; seen already: nothing.
    assert [a.key for a in plan_remark(remark(), issue(), None, targets(ticket("1"), ticket("2"))).actions] == [
        a.key for a in plan.actions
    ]
    again = plan_remark(remark(), issue(), plan.mark, targets(ticket("1")))
    assert again.actions == [] and again.mark is None


def test_an_edit_and_a_deletion_are_short_notes_once_each():
    first = plan_remark(remark(), issue(), None, targets(ticket()))
    edited = plan_remark(remark("Fixed in 4.3 instead"), issue(), first.mark, targets(ticket()))
    assert edited.actions[0].write.note.startswith("Ana Engineer edited their comment on ENG-8:\nFixed in 4.3")
    assert edited.actions[0].key != first.actions[0].key
    gone = plan_remark(remark("Fixed in 4.3 instead", deleted=True), issue(), edited.mark, targets(ticket()))
    assert gone.actions[0].write.note == "Ana Engineer deleted their comment on ENG-8: https://trk.example/ENG-8#c9"
    assert gone.mark is not None and gone.mark.deleted
    assert plan_remark(remark(deleted=True), issue(), gone.mark, targets(ticket())).actions == []
    # A comment deleted before syncd mirrored it: nothing to say.
    assert plan_remark(remark(deleted=True), issue(), None, targets(ticket())).actions == []


@pytest.mark.parametrize(
    "which",
    [
        dict(author_name="ci-bot", author_id="b1"),  # a bot the rule lists
        dict(bot=True),  # the tracker says it is an app
        dict(private=True),  # restricted visibility
        dict(markers=("0123456789abcdef0123",)),  # syncd's own
        dict(author_id="syncd-account"),  # syncd's account
        dict(created_at=ON - timedelta(seconds=1)),  # before the rule was on
    ],
)
def test_comments_not_mirrored(which):
    plan = plan_remark(remark(**which), issue(), None, targets(ticket()), own=("syncd-account",))
    assert plan.actions == [] and plan.mark is None


def test_off_or_one_way_routes_and_closed_tickets_get_nothing():
    for rule in (OFF, ConversationRule("to_issue", prefix="#eng")):
        assert plan_remark(remark(), issue(), None, targets(ticket(), rule=rule)).actions == []
    assert plan_remark(remark(), issue(), None, targets(ticket(status="closed"))).actions == []
    only_ana = ConversationRule("to_ticket", engineers=("someone else",))
    assert plan_remark(remark(), issue(), None, targets(ticket(), rule=only_ana)).actions == []


def test_a_long_comment_is_its_first_paragraph_and_the_link():
    long = "First paragraph says the fix.\n\n" + "details " * 400
    plan = plan_remark(remark(long), issue(), None, targets(ticket(), rule=ConversationRule("to_ticket")))
    text = plan.actions[0].write.note
    assert "First paragraph says the fix." in text and "details" not in text
    assert "(more on ENG-8)" in text and text.endswith("https://trk.example/ENG-8#c9")
    assert shortened("short", 80) == ("short", False)
    assert shortened("x" * 100, 80) == ("x" * 79 + "…", True)


# -- ticket -> issue --------------------------------------------------------------------------------


def test_an_eng_note_reaches_a_private_issue_in_full_and_a_public_one_without_the_customer():
    words = "#eng It happens only on Safari 17 when Dana Whitfield exports"
    sides = [IssueSide(issue(False, "i1")), IssueSide(issue(True, "i2"))]
    actions = plan_agent_note(note(words), ticket(), BOTH, ON, sides, "Sam Agent", "Desk").actions
    private = [a for a in actions if a.target == "i1"]
    held = [a for a in actions if isinstance(a.write, MirrorNote)]
    assert len(private) == 1 and isinstance(private[0].write, MirrorComment)
    body = private[0].write.body
    assert body.startswith("Sam Agent on Desk ticket ") and "#" in body.split("(")[0]
    assert "(https://desk.example/tickets/1):" in body
    assert "only on Safari 17 when Dana Whitfield exports" in body and "#eng" not in body
    # The public issue gets nothing: the words name the customer; the agent is told why.
    assert [a.target for a in actions if isinstance(a.write, MirrorComment)] == ["i1"]
    assert len(held) == 1 and held[0].target == "1"
    assert "contains the customer's name" in held[0].write.note and "Dana" not in held[0].write.note

    clean = plan_agent_note(note("#eng only on Safari 17"), ticket(), BOTH, ON, sides, "Sam Agent", "Desk").actions
    public = next(a for a in clean if a.target == "i2")
    assert public.write.public and public.write.body.startswith("From support (T-")
    assert "Sam" not in public.write.body and "desk.example" not in public.write.body
    assert "only on Safari 17" in public.write.body


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("write to dana@acme.example", ["an e-mail address", "the customer's name"]),
        ("write to ops@other.example", ["an e-mail address"]),
        ("Whitfield says hi", ["the customer's name"]),
        ("all of acme corp is down", ["the customer's organisation"]),
        ("see https://desk.example/tickets/1", ["the ticket's link"]),
        ("only on Safari", []),
    ],
)
def test_privacy_problems(text, found):
    assert privacy_problems(text, ticket(), "https://desk.example/tickets/1") == found


def test_notes_the_rule_does_not_select():
    sides = [IssueSide(issue())]
    cases = [
        note("no prefix here"),
        note("#eng public reply", public=True),
        note("#eng syncd's own", markers=("0123456789abcdef0123",)),
        note("#eng too early", created_at=ON - timedelta(minutes=1)),
        note("#eng"),  # nothing after the prefix
    ]
    for n in cases:
        assert not plan_agent_note(n, ticket(), BOTH, ON, sides, "Sam")
    assert not plan_agent_note(note("#eng x"), ticket(), OFF, ON, sides, "Sam")
    only = ConversationRule("to_issue", prefix="#eng", agents=("a2",))
    assert not plan_agent_note(note("#eng x"), ticket(), only, ON, sides, "Sam")


def test_a_tag_selects_every_internal_note_while_the_ticket_carries_it():
    rule = ConversationRule("to_issue", tag="to_eng")
    sides = [IssueSide(issue())]
    assert not plan_agent_note(note("Safari only"), ticket(), rule, ON, sides, "Sam")
    actions = plan_agent_note(note("Safari only"), ticket(tags=("to_eng",)), rule, ON, sides, "Sam").actions
    assert len(actions) == 1 and "Safari only" in actions[0].write.body


def test_a_comment_no_longer_listed_is_noted_as_deleted_with_what_was_remembered():
    first = plan_remark(remark(), issue(), None, targets(ticket()))
    assert first.mark is not None
    gone = first.mark.gone("c9", issue(), T0)
    assert gone.deleted and gone.author_name == "Ana Engineer" and gone.issue_id == "i1"
    plan = plan_remark(gone, issue(), first.mark, targets(ticket()))
    assert [a.write.note for a in plan.actions] == [
        "Ana Engineer deleted their comment on ENG-8: https://trk.example/ENG-8#c9"
    ]
    assert Mirrored.from_dict(plan.mark.to_dict() if plan.mark else None) == plan.mark


def test_syncd_check_reports_a_bad_rule_in_one_line(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "routes.toml").write_text(ROUTE + '\n[routes.main.conversation]\ndirection = "to_issue"\n')
    assert mapping_files.check_mappings(d, trackers=TRACKERS, kinds=tracker_kinds()) == [
        f"{d}/routes.toml:5: routes.main.conversation: an agent's notes go to the issues only when selected: "
        'give prefix = "#eng" or tag = "..." or set direction = "to_ticket"'
    ]
    (d / "routes.toml").write_text(ROUTE + '\n[routes.main.conversation]\ndirection = "both"\nprefix = "#eng"\n')
    assert mapping_files.check_mappings(d, trackers=TRACKERS, kinds=tracker_kinds()) == []


def test_a_refused_note_tells_the_agent_once():
    from mappings.conversation_plan import plan_refused

    comment = MirrorComment("Sam on #1: words", False, "1", "n1", "Sam")
    action = plan_refused(Ref("desk", "1"), comment, "acme/sdk#3")
    assert action.target == "1" and isinstance(action.write, MirrorNote) and action.write.held
    assert action.write.note.startswith("This note was not copied to acme/sdk#3: it became readable by anyone")
    assert plan_refused(Ref("desk", "1"), comment, "acme/sdk#3").key == action.key
