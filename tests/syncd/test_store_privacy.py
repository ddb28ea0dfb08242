"""The store's record of places that turned public, and of syncd's delivered writes."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

from syncd.records import Issue, Ref, StateCategory, to_dict
from syncd.writes import Action, AttachTicket, IssueComment

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def issue(ident: str, team: str) -> Issue:
    return Issue(
        Ref("github", ident),
        f"{team}#{ident}",
        f"https://github.com/{team}/issues/{ident}",
        "t",
        StateCategory.UNSTARTED,
        "Open",
        T0,
        team=team,
    )


def test_place_visibility_is_kept_per_tracker_and_place_any_case(store_opener):
    with store_opener(clock=lambda: T0) as store:
        assert store.place_visibility("github") == {}
        store.set_place_visibility("github", "Acme/Billing", False)
        store.set_place_visibility("github", "acme/web", True)
        store.set_place_visibility("github", "acme/billing", True)
        assert store.place_visibility("github") == {"acme/billing": True, "acme/web": True}
        assert store.place_visibility("other") == {}
        assert store.get_meta(Ref("github", "907")) == {}  # issue bookkeeping is apart


def test_issues_in_place_and_delivered_writes(store_opener):
    with store_opener(clock=lambda: T0) as store:
        for record in (issue("1", "Acme/Billing"), issue("2", "acme/web")):
            store.put_snapshot(record)
        assert [i.ref.id for i in store.issues_in_place("github", "acme/billing")] == ["1"]
        for key, target, write in (
            ("a" * 20, "1", AttachTicket("u", "t", "s")),
            ("b" * 20, "1", IssueComment("c")),
            ("c" * 20, "2", AttachTicket("u", "t", "s")),
        ):
            store.enqueue(Action(key, "github", target, write, f"issue:{target}"))
        rows = {r.key: r for r in store.list_outbox()}
        store.mark_done(rows["a" * 20].id, {"id": "11"})
        store.mark_done(rows["c" * 20].id, {"id": "12"})
        assert [r.key for r in store.done_writes("github", ["issue.attach"])] == ["a" * 20, "c" * 20]
        assert [r.key for r in store.done_writes("github", ["issue.attach", "issue.comment"], target="1")] == ["a" * 20]
        first = store.done_writes("github", ["issue.attach"], limit=1)
        assert [r.key for r in first] == ["a" * 20]  # a page, then the next after its last id
        assert [r.key for r in store.done_writes("github", ["issue.attach"], after=first[-1].id)] == ["c" * 20]
        assert store.issue_ids_in_place("github", "ACME/Billing") == ["1"]
        assert [r.key for r in store.unfinished_for("github", "1")] == ["b" * 20]
        assert [r.key for r in store.done_writes_unnoted("issue.attach")] == ["a" * 20, "c" * 20]
        store.set_action_result(rows["a" * 20].id, {"id": "11", "noted": True})
        assert [r.key for r in store.done_writes_unnoted("issue.attach")] == ["c" * 20]


def test_a_place_s_issue_ids_come_a_page_at_a_time_and_which_in_place_asks_only_of_the_ids_given(store_opener):
    with store_opener(clock=lambda: T0) as store:
        for n in range(1, 8):
            store.put_snapshot(issue(str(n), "Acme/Billing" if n % 2 else "acme/web"))
        store.put_snapshot(dataclasses.replace(issue("9", "acme/billing"), ref=Ref("linear", "9")))  # another tracker
        pages, after = [], ""
        while ids := store.issue_ids_in_place("github", "acme/billing", after=after, limit=2):
            pages.append(ids)
            after = ids[-1]
        assert pages == [["1", "3"], ["5", "7"]]
        assert store.which_in_place("github", "ACME/billing", ["1", "2", "3", "1", "8", "9"]) == {"1", "3"}
        assert store.which_in_place("github", "acme/billing", []) == set()
        assert store.which_in_place("linear", "acme/billing", ["9"]) == {"9"}


def test_issues_without_native_come_a_page_at_a_time(store_opener):
    with store_opener(clock=lambda: T0) as store:
        for n in range(1, 6):
            store.put_snapshot(issue(str(n), "acme/web"))
        assert store.issues_without_native("github") == []  # native is stored with every snapshot
        with store.transaction():  # 2, 3 and 5 as syncd stored them before Issue.native existed
            for ident in ("2", "3", "5"):
                old = issue(ident, "acme/web")
                data = {k: v for k, v in to_dict(old).items() if k != "native"}
                store._x(
                    "UPDATE snapshots SET data = ? WHERE connector = 'github' AND id = ?", [json.dumps(data), ident]
                )
        first = store.issues_without_native("github", limit=2)
        assert [i.ref.id for i in first] == ["2", "3"]
        assert [i.ref.id for i in store.issues_without_native("github", after="3", limit=2)] == ["5"]
        assert store.issues_without_native("github", after="5", limit=2) == []
        assert store.issues_without_native("linear") == []
