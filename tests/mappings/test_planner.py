"""The mapping layer, tested with records only: no store, no network."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from mappings.links import (
    compile_patterns,
    issue_ticket_ids,
    noted_refs,
    refs_in_text,
    syncd_attached_ticket_ids,
    ticket_candidates,
)
from mappings.planner import (
    LinkedTicket,
    PlanSettings,
    attach_key,
    link_key,
    opaque_ref,
    plan_gone_ref,
    plan_issue_gone,
    plan_issue_update,
    plan_link,
    plan_out_of_reach,
    plan_unlink,
    status_field_value,
)
from mappings.templates import Template, TemplateError
from syncd.records import Attachment, Comment, Issue, Link, Organization, Ref, StateCategory, Ticket
from syncd.writes import ISSUE_ATTACH, TICKET_UPDATE

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
SETTINGS = PlanSettings(helpdesk="zendesk", status_field="9001")
PATTERNS = compile_patterns(
    {
        "linear": [r"https://linear\.app/[\w-]+/issue/(?P<ref>[A-Z][A-Z0-9]*-\d+)", r"\b(?P<ref>(?:ENG|APP)-\d+)\b"],
    }
)


def ticket(n=1, status="open", **kw) -> Ticket:
    return Ticket(
        ref=Ref("zendesk", str(n)),
        key=f"#{n}",
        url=f"https://acme.zendesk.com/agent/tickets/{n}",
        subject=f"Export fails {n}",
        status=status,
        updated_at=T0,
        organization=Organization("o1", "Globex"),
        **kw,
    )


def issue(key="ENG-1", state=StateCategory.UNSTARTED, name="Todo", uid="u1", at=T0, **kw) -> Issue:
    return Issue(
        ref=Ref("linear", uid),
        key=key,
        url=f"https://linear.app/acme/issue/{key}",
        title="CSV export",
        state=state,
        state_name=name,
        updated_at=at,
        **kw,
    )


def comment(body, cid="c1", markers=()) -> Comment:
    return Comment(cid, body, False, "a1", T0, markers)


# -- link detection --------------------------------------------------------------------


def test_url_and_key_in_a_comment_are_found_once():
    found = refs_in_text("see https://linear.app/acme/issue/ENG-12/slug and ENG-12, APP-3", PATTERNS)
    assert found == [("linear", "ENG-12"), ("linear", "APP-3")]


def test_unconfigured_prefixes_are_not_links():
    assert refs_in_text("dates like ISO-8601 and UTF-8 are not issues", PATTERNS) == []


def test_syncd_own_notes_never_link():
    cands = ticket_candidates(ticket(), None, [comment("Linked to ENG-5", markers=("a" * 20,))], PATTERNS)
    assert cands == []


def test_new_tags_and_link_field_are_scanned_but_old_ones_not():
    prev = ticket(tags=("eng-1",), fields={"77": "ENG-2"})
    cur = replace(prev, tags=("eng-1", "app-9"), fields={"77": "ENG-2"})
    cands = ticket_candidates(cur, prev, [], PATTERNS, link_fields=["77"])
    assert [(c.ref, c.origin) for c in cands] == [("APP-9", "tag")]
    cur2 = replace(prev, fields={"77": "https://linear.app/acme/issue/ENG-4/x"})
    assert [(c.ref, c.origin) for c in ticket_candidates(cur2, prev, [], PATTERNS, ["77"])] == [("ENG-4", "field")]


def test_attachments_a_person_added_link_but_syncd_ones_do_not():
    pattern = re.compile(r"https://acme\.zendesk\.com/agent/tickets/(?P<id>\d+)")
    i = issue(
        attachments=(
            Attachment("https://acme.zendesk.com/agent/tickets/7", "t"),
            Attachment("https://acme.zendesk.com/agent/tickets/8", "t", marker="k" * 20),
            Attachment("https://example.com/doc", "doc"),
        )
    )
    assert issue_ticket_ids(i, None, pattern) == ["7"]
    assert issue_ticket_ids(i, i, pattern) == []  # already seen


def test_what_syncd_showed_and_noted_is_found_for_a_lost_store_but_a_persons_text_is_not():
    pattern = re.compile(r"https://acme\.zendesk\.com/agent/tickets/(?P<id>\d+)")
    i = issue(
        attachments=(
            Attachment("https://acme.zendesk.com/agent/tickets/7", "t"),
            Attachment("https://acme.zendesk.com/agent/tickets/8", "t", marker="k" * 20),
            Attachment("https://example.com/doc", "doc", marker="m" * 20),
        )
    )
    assert syncd_attached_ticket_ids(i, pattern) == [("8", "k" * 20)]
    notes = [
        comment("Waiting on ENG-4"),
        comment("Linked to ENG-5: CSV export", markers=("a" * 20,)),
        comment("ENG-5 moved to Done; see APP-2", markers=("b" * 20,)),
    ]
    assert noted_refs(notes, PATTERNS) == [("linear", "ENG-5"), ("linear", "APP-2")]


def test_the_keys_a_link_writes_are_the_ones_a_lost_store_looks_for():
    t, i = ticket(), issue()
    plan = plan_link(Link(t.ref, i.ref, "cli"), t, i, [], SETTINGS)
    assert [a.key for a in plan.actions] == [link_key(t.ref, i.ref), attach_key(t.ref, i.ref)]
    relinked = plan_link(Link(t.ref, i.ref, "cli"), t, i, [], SETTINGS, epoch="2026-11-02T10:00:00Z")
    assert relinked.actions[0].key == link_key(t.ref, i.ref, "2026-11-02T10:00:00Z") != link_key(t.ref, i.ref)


# -- planning --------------------------------------------------------------------------------


def test_new_link_plans_note_tag_field_and_attachment():
    t, i = ticket(), issue(assignee="Ada")
    plan = plan_link(Link(t.ref, i.ref, "comment"), t, i, [], SETTINGS)
    assert plan.links == [Link(t.ref, i.ref, "comment")]
    note, attach = plan.actions
    assert note.op == TICKET_UPDATE and note.target == "1"
    assert (
        "ENG-1" in note.write.payload()["note"]
        and "Ada" in note.write.payload()["note"]
        and i.url in note.write.payload()["note"]
    )
    assert note.write.payload()["add_tags"] == ["syncd_linked"]
    assert note.write.payload()["fields"] == {"9001": "ENG-1: Todo (Ada)"}
    assert attach.op == ISSUE_ATTACH and attach.connector == "linear" and attach.target == "u1"
    assert attach.write.payload()["url"] == t.url and "Globex" in attach.write.payload()["subtitle"]


def test_planning_twice_gives_the_same_keys():
    t, i = ticket(), issue()
    a = plan_link(Link(t.ref, i.ref, "comment"), t, i, [], SETTINGS)
    b = plan_link(Link(t.ref, i.ref, "comment"), t, i, [], SETTINGS)
    assert [x.key for x in a.actions] == [x.key for x in b.actions]
    relink = plan_link(Link(t.ref, i.ref, "comment"), t, i, [], SETTINGS, epoch="2026-11-03T00:00:00Z")
    assert relink.actions[0].key != a.actions[0].key


def test_public_tracker_gets_no_customer_data():
    t, i = ticket(), issue(public=True)
    attach = plan_link(Link(t.ref, i.ref, "cli"), t, i, [], SETTINGS).actions[1]
    text = attach.write.payload()["title"] + attach.write.payload()["subtitle"]
    assert "Globex" not in text and "Export fails" not in text and t.url == attach.write.payload()["url"]
    assert opaque_ref(t.ref) in text


def test_state_change_notes_every_linked_ticket_with_one_shared_marker():
    prev = issue()
    cur = issue(state=StateCategory.STARTED, name="In Progress", at=T0 + timedelta(minutes=5), assignee="Ada")
    linked = [LinkedTicket(ticket(n), (cur,)) for n in (1, 2, 3)]
    plan = plan_issue_update(cur, prev, linked, SETTINGS)
    assert [a.target for a in plan.actions] == ["1", "2", "3"]
    assert len({a.key for a in plan.actions}) == 3
    payloads = [a.write.payload() for a in plan.actions]
    assert all(p == payloads[0] for p in payloads)  # bulk-able
    assert "moved from Todo to In Progress" in payloads[0]["note"]
    assert payloads[0]["fields"] == {"9001": "ENG-1: In Progress (Ada)"}
    assert "status" not in payloads[0]


def test_no_change_no_actions():
    i = issue()
    assert not plan_issue_update(
        replace(i, updated_at=T0 + timedelta(1)), i, [LinkedTicket(ticket(), (i,))], SETTINGS
    ).actions


def test_completion_reopens_solved_ticket_and_asks_for_follow_up():
    prev = issue(state=StateCategory.STARTED, name="In Progress")
    done = issue(state=StateCategory.COMPLETED, name="Done", at=T0 + timedelta(hours=1))
    plan = plan_issue_update(
        done,
        prev,
        [LinkedTicket(ticket(1, status="solved"), (done,)), LinkedTicket(ticket(2, status="open"), (done,))],
        SETTINGS,
    )
    solved, still_open = (a.write.payload() for a in plan.actions)
    # The reopen is conditional on the status when the write lands, whatever the snapshot said.
    assert solved["status"] == "open" and solved["status_from"] == ["solved", "pending"]
    assert still_open["status_from"] == ["solved", "pending"]
    assert "follow up with the customer" in solved["note"] and "follow up" in still_open["note"]
    assert [e.kind for e in plan.events].count("resolved") == 2


def test_ticket_linked_to_several_trackers_resolves_only_when_all_are_closed():
    jira = Issue(
        Ref("jira", "10001"),
        "PROJ-7",
        "https://x.atlassian.net/browse/PROJ-7",
        "Bug",
        StateCategory.STARTED,
        "In Progress",
        T0,
    )
    prev = issue(state=StateCategory.STARTED, name="In Progress")
    done = issue(state=StateCategory.COMPLETED, name="Done", at=T0 + timedelta(hours=1))
    plan = plan_issue_update(done, prev, [LinkedTicket(ticket(status="solved"), (done, jira))], SETTINGS)
    (action,) = plan.actions
    assert "status" not in action.write.payload()  # PROJ-7 is still open: no reopen yet
    assert (
        "Still waiting on" in action.write.payload()["note"] and "PROJ-7: In Progress" in action.write.payload()["note"]
    )
    jira_done = replace(jira, state=StateCategory.CANCELED, state_name="Won't Do", updated_at=T0 + timedelta(hours=2))
    plan2 = plan_issue_update(jira_done, jira, [LinkedTicket(ticket(status="solved"), (done, jira_done))], SETTINGS)
    note = plan2.actions[0].write.payload()["note"]
    assert plan2.actions[0].write.payload()["status"] == "open"
    assert "ENG-1: Done" in note and "PROJ-7: Won't Do" in note


def test_key_change_updates_the_field_without_a_note():
    prev = issue(key="ENG-1")
    moved = issue(key="APP-4", at=T0 + timedelta(minutes=1))
    plan = plan_issue_update(moved, prev, [LinkedTicket(ticket(), (moved,))], SETTINGS)
    (action,) = plan.actions
    assert "note" not in action.write.payload() and action.write.payload()["fields"] == {"9001": "APP-4: Todo"}
    assert plan.events[0].kind == "issue_moved"


def test_unlink_removes_tag_only_when_nothing_is_left():
    t, i, other = ticket(), issue(), issue(key="APP-2", uid="u2")
    last = plan_unlink(Link(t.ref, i.ref, "cli"), t, i, [], SETTINGS, "by hand").actions[0]
    assert last.write.payload()["remove_tags"] == ["syncd_linked"]
    not_last = plan_unlink(Link(t.ref, i.ref, "cli"), t, i, [other], SETTINGS, "by hand").actions[0]
    assert "remove_tags" not in not_last.write.payload() and not_last.write.payload()["fields"] == {
        "9001": "APP-2: Todo"
    }


def test_status_field_lists_issues_in_key_order():
    assert (
        status_field_value([issue(key="ENG-2", uid="b"), issue(key="APP-1", uid="a", assignee="Li")])
        == "APP-1: Todo (Li); ENG-2: Todo"
    )


def test_template_with_a_missing_placeholder_is_an_error():
    with pytest.raises(TemplateError, match="needs customer"):
        Template("t", "Hello {customer}").render({})
    # Values are text: braces in a subject are not re-read as placeholders.
    assert Template("t", "{a}").render({"a": "{b}"}) == "{b}"


# -- issues gone or out of reach ------------------------------------------------------------


def test_a_gone_issue_ends_the_link_with_its_own_note_and_drops_the_tag_when_nothing_is_left():
    gone, other = issue("ENG-1"), issue("ENG-2", uid="u2", name="In Progress")
    link = Link(Ref("zendesk", "1"), gone.ref, "comment")
    plan = plan_issue_gone(link, ticket(), gone, [], SETTINGS, epoch="e1")
    (action,) = plan.actions
    assert (
        "ENG-1 (CSV export) was deleted, or is no longer visible to syncd's account" in action.write.payload()["note"]
    )
    assert action.write.payload()["remove_tags"] == ["syncd_linked"] and action.write.payload()["fields"] == {
        "9001": ""
    }
    assert plan.ended == [(link, "issue deleted or no longer visible")]
    assert plan_issue_gone(link, ticket(), gone, [], SETTINGS, epoch="e1").actions[0].key == action.key
    kept = plan_issue_gone(link, ticket(), gone, [other], SETTINGS, epoch="e1").actions[0]
    assert "remove_tags" not in kept.write.payload() and kept.write.payload()["fields"] == {
        "9001": "ENG-2: In Progress"
    }


def test_a_ticket_naming_a_gone_issue_gets_one_note_keyed_by_what_it_named():
    plan = plan_gone_ref(ticket(), "linear", "ENG-9", "ENG-9", SETTINGS)
    (action,) = plan.actions
    assert action.write.payload() == {
        "note": "ENG-9 is deleted, or not visible to syncd's account, so this ticket was not "
        "linked to it. If the work still matters, link the issue that replaced it."
    }
    assert not plan.links
    assert plan_gone_ref(ticket(), "linear", "ENG-9", "ENG-9", SETTINGS).actions[0].key == action.key
    assert plan_gone_ref(ticket(2), "linear", "ENG-9", "ENG-9", SETTINGS).actions[0].key != action.key


def test_an_issue_out_of_reach_tells_each_ticket_once_per_place():
    moved = issue("OLD-3", team="OLD")
    plan = plan_out_of_reach(moved, [ticket(1), ticket(2)], SETTINGS)
    assert [a.target for a in plan.actions] == ["1", "2"]
    assert "OLD-3 (CSV export) moved to OLD, which syncd does not follow" in plan.actions[0].write.payload()["note"]
    assert not plan.ended and not plan.links
    again = plan_out_of_reach(replace(moved, team="ARCHIVE"), [ticket(1)], SETTINGS)
    assert again.actions[0].key != plan.actions[0].key


def test_tickets_sharing_their_issues_get_the_same_status_field_each_in_a_dict_of_its_own():
    jira = Issue(Ref("jira", "10001"), "PROJ-7", "https://x/PROJ-7", "Bug", StateCategory.STARTED, "In Progress", T0)
    other = Issue(Ref("jira", "10002"), "PROJ-8", "https://x/PROJ-8", "Bug", StateCategory.UNSTARTED, "To Do", T0)
    prev = issue(state=StateCategory.UNSTARTED, name="Todo")
    moved = issue(state=StateCategory.STARTED, name="In Progress", at=T0 + timedelta(hours=1))
    linked = [
        LinkedTicket(ticket(1), (moved, jira)),
        LinkedTicket(ticket(2), (moved, jira)),
        LinkedTicket(ticket(3), (moved, other)),
        LinkedTicket(ticket(4), (jira, moved)),
    ]
    plan = plan_issue_update(moved, prev, linked, SETTINGS)
    fields = [a.write.fields for a in plan.actions]
    # Each as planned for that ticket alone.
    alone = [plan_issue_update(moved, prev, [lt], SETTINGS).actions[0].write.fields for lt in linked]
    assert fields == alone
    assert fields[0] == fields[1] == fields[3] == {"9001": "ENG-1: In Progress; PROJ-7: In Progress"}
    assert fields[2] == {"9001": "ENG-1: In Progress; PROJ-8: To Do"}
    assert len({id(f) for f in fields}) == 4  # no write shares its dict with another
