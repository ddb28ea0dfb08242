"""The comments of a page of changed tickets from the ticket events export
(ZendeskConnector.page_comments), with HTTP mocked by ``responses``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import responses

import connectors.zendesk.connector as zendesk
from connectors.base import CommentAsk
from connectors.zendesk.connector import EVENTS_PATH, ZendeskConfig, ZendeskConnector
from syncd.errors import PayloadError

BASE = "https://acme.zendesk.com"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


def make() -> ZendeskConnector:
    config = ZendeskConfig(kind="zendesk", url=BASE, email="ops@acme.test", token="t0ken-value")
    return ZendeskConnector("zd", config, sleep=lambda _s: None, clock=lambda: T0 + timedelta(days=1))


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def unix(seconds: int) -> int:
    return int(at(seconds).timestamp())


def comment(cid: int, body: str, seconds: int, **extra) -> dict:
    return {
        "id": cid,
        "type": "Comment",
        "author_id": 7,
        "body": body,
        "html_body": f"<p>{body}</p>",
        "public": False,
        "audit_id": cid + 1000,
        "created_at": at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "event_type": "Comment",
        **extra,
    }


def event(eid: int, ticket: int, seconds: int, *children: dict) -> dict:
    return {
        "id": eid,
        "ticket_id": ticket,
        "timestamp": unix(seconds),
        "created_at": at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updater_id": 7,
        "via": "Web form",
        "event_type": "Audit",
        "child_events": [{"id": eid + 1, "status": "open", "previous_value": "new", "event_type": "Change"}, *children],
    }


def events_page(events: list[dict], end: int, done: bool) -> dict:
    return {
        "ticket_events": events,
        "end_time": end,
        "end_of_stream": done,
        "count": len(events),
        "next_page": f"{BASE}{EVENTS_PATH}.json?start_time={end}",
    }


def comments_answer(*items: dict) -> dict:
    return {"comments": list(items), "meta": {"has_more": False, "after_cursor": None}}


def asked(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_one_request_brings_the_new_comments_of_every_ticket_of_the_page():
    responses.get(
        BASE + EVENTS_PATH,
        json=events_page(
            [
                event(1, 11, 10, comment(501, "first on 11", 10)),
                event(3, 12, 20, comment(502, "first on 12", 20)),
                event(5, 99, 25, comment(503, "another ticket's", 25)),
                event(7, 11, 30, comment(504, "second on 11, see ENG-7", 30)),
            ],
            unix(30),
            done=True,
        ),
    )
    zd = make()
    out = zd.page_comments(
        [
            CommentAsk("11", "501", at(10), at(30)),
            CommentAsk("12", None, at(20), at(20)),
            CommentAsk("13", None, at(5), at(5)),
        ]
    )
    assert len(responses.calls) == 1
    query = asked(responses.calls[0])
    assert query == {"start_time": [str(unix(5))], "include": ["comment_events"]}  # the earliest since
    first = out["11"]
    assert not isinstance(first, PayloadError)
    assert [(c.id, c.body) for c in first] == [("504", "second on 11, see ENG-7")]  # after 501 only
    second = out["12"]
    assert not isinstance(second, PayloadError)
    assert [c.id for c in second] == ["502"] and second[0].public is False and second[0].author_id == "7"
    assert out["13"] == []  # covered, and it had nothing new


@responses.activate
def test_pages_overlap_by_a_second_and_are_read_until_every_ticket_is_covered():
    repeated = event(3, 12, 20, comment(502, "on 12", 20))
    responses.get(
        BASE + EVENTS_PATH,
        json=events_page([event(1, 11, 10, comment(501, "on 11", 10)), repeated], unix(20), done=False),
    )
    responses.get(
        BASE + EVENTS_PATH,
        json=events_page([repeated, event(5, 12, 40, comment(505, "later on 12", 40))], unix(40), done=True),
    )
    # Eleven tickets changed up to the second page's time: the first page covers none, and
    # one more events page is worth less than eleven reads.
    quiet = [CommentAsk(str(t), None, at(20), at(40)) for t in range(13, 22)]
    out = make().page_comments([CommentAsk("11", None, at(10), at(40)), CommentAsk("12", None, at(20), at(40)), *quiet])
    assert all(out[str(t)] == [] for t in range(13, 22))
    assert [asked(c)["start_time"] for c in responses.calls] == [[str(unix(10))], [str(unix(20))]]
    eleven, twelve = out["11"], out["12"]
    assert not isinstance(eleven, PayloadError) and not isinstance(twelve, PayloadError)
    assert [c.id for c in eleven] == ["501"]
    assert [c.id for c in twelve] == ["502", "505"]  # the repeated second once


@responses.activate
def test_a_ticket_opened_long_before_the_others_is_read_on_its_own():
    responses.get(BASE + EVENTS_PATH, json=events_page([event(1, 11, 10, comment(501, "on 11", 10))], unix(10), True))
    responses.get(
        BASE + "/api/v2/tickets/12/comments", json=comments_answer(comment(400, "from last year", -400 * 86400))
    )
    out = make().page_comments(
        [CommentAsk("11", None, at(10), at(10)), CommentAsk("12", None, at(-400 * 86400), at(12))]
    )
    assert [path for path in (urlsplit(c.request.url).path for c in responses.calls)] == [
        EVENTS_PATH,
        "/api/v2/tickets/12/comments",
    ]
    assert asked(responses.calls[0])["start_time"] == [str(unix(10))]  # not a year of events
    twelve = out["12"]
    assert not isinstance(twelve, PayloadError) and [c.id for c in twelve] == ["400"]


@responses.activate
def test_a_stream_that_does_not_move_leaves_the_rest_to_reads_ticket_by_ticket():
    busy = [event(2 * i, 50 + i, 10) for i in range(3)]
    # A full page of one second: the next page would start at that same second again.
    responses.get(BASE + EVENTS_PATH, json=events_page(busy, unix(10), done=False))
    responses.get(BASE + "/api/v2/tickets/11/comments", json=comments_answer(comment(501, "on 11", 10)))
    out = make().page_comments([CommentAsk("11", None, at(10), at(10))])
    paths = [urlsplit(c.request.url).path for c in responses.calls]
    assert paths == [EVENTS_PATH, "/api/v2/tickets/11/comments"]
    eleven = out["11"]
    assert not isinstance(eleven, PayloadError) and [c.id for c in eleven] == ["501"]


@responses.activate
def test_reading_on_stops_when_an_events_page_is_worth_more_than_the_reads_left():
    # 25 tickets uncovered while the events go on: a page is worth 10 reads, so a third page
    # (30 reads' worth) is not read for 25 tickets: they are read one by one.
    for i in range(5):
        responses.get(BASE + EVENTS_PATH, json=events_page([event(100 + i, 99, 10 + i)], unix(11 + i), done=False))
    for t in range(25):
        responses.get(f"{BASE}/api/v2/tickets/{t + 1}/comments", json=comments_answer())
    make().page_comments([CommentAsk(str(t + 1), None, at(10), at(100)) for t in range(25)])
    paths = [urlsplit(c.request.url).path for c in responses.calls]
    assert paths.count(EVENTS_PATH) == 3
    assert paths[3:] == [f"/api/v2/tickets/{t + 1}/comments" for t in range(25)]


@responses.activate
def test_an_agent_token_refused_the_export_reads_ticket_by_ticket_from_then_on():
    responses.get(BASE + EVENTS_PATH, status=403, json={"error": "Forbidden", "description": "no"})
    responses.get(BASE + "/api/v2/tickets/11/comments", json=comments_answer(comment(501, "on 11", 10)))
    zd = make()
    for _ in range(2):
        out = zd.page_comments([CommentAsk("11", None, at(10), at(10))])
        eleven = out["11"]
        assert not isinstance(eleven, PayloadError) and [c.id for c in eleven] == ["501"]
    paths = [urlsplit(c.request.url).path for c in responses.calls]
    assert paths == [EVENTS_PATH, "/api/v2/tickets/11/comments", "/api/v2/tickets/11/comments"]


@responses.activate
def test_a_comment_without_its_own_time_takes_its_events_and_bad_ones_are_skipped():
    plain = comment(501, "no time of its own", 10)
    del plain["created_at"]
    responses.get(
        BASE + EVENTS_PATH,
        json=events_page(
            [
                event(1, 11, 10, plain, {"id": "x", "event_type": "Comment"}, {"id": 9, "event_type": "Comment"}),
                "not an event",
                {"ticket_id": "eleven", "child_events": []},
            ],
            unix(10),
            done=True,
        ),
    )
    out = make().page_comments([CommentAsk("11", None, at(10), at(10))])
    eleven = out["11"]
    assert not isinstance(eleven, PayloadError)
    assert [(c.id, c.created_at) for c in eleven] == [("501", at(10))]


@responses.activate
def test_an_answer_without_events_is_asked_again_once_then_the_page_is_read_ticket_by_ticket():
    responses.get(BASE + EVENTS_PATH, json={"tickets": []})
    responses.get(BASE + EVENTS_PATH, json={"error": "busy"})
    responses.get(BASE + "/api/v2/tickets/11/comments", json=comments_answer(comment(501, "on 11", 10)))
    out = make().page_comments([CommentAsk("11", None, at(10), at(10))])
    eleven = out["11"]
    assert not isinstance(eleven, PayloadError) and [c.id for c in eleven] == ["501"]  # never "no comments"
    paths = [urlsplit(c.request.url).path for c in responses.calls]
    assert paths == [EVENTS_PATH, EVENTS_PATH, "/api/v2/tickets/11/comments"]


@responses.activate
def test_after_a_full_page_of_one_second_the_stream_goes_on_for_tickets_clear_of_it(monkeypatch):
    monkeypatch.setattr(zendesk, "EVENTS_PAGE_WORTH", 0)  # one ticket left is worth the next page here
    busy = [event(2 * i, 50 + i, 10) for i in range(3)]
    # A full page of one second (it ends where it starts): the rest of that second is never read.
    responses.get(BASE + EVENTS_PATH, json=events_page(busy, unix(10), done=False))
    responses.get(
        BASE + EVENTS_PATH, json=events_page([event(9, 12, 15, comment(502, "on 12", 15))], unix(15), done=True)
    )
    responses.get(BASE + "/api/v2/tickets/11/comments", json=comments_answer(comment(501, "on 11", 10)))
    out = make().page_comments([CommentAsk("11", None, at(10), at(10)), CommentAsk("12", "400", at(12), at(15))])
    assert [asked(c).get("start_time") for c in responses.calls if urlsplit(c.request.url).path == EVENTS_PATH] == [
        [str(unix(10))],
        [str(unix(10) + 1)],  # the next second on
    ]
    eleven, twelve = out["11"], out["12"]
    assert not isinstance(eleven, PayloadError) and [c.id for c in eleven] == ["501"]  # its second: read on its own
    assert not isinstance(twelve, PayloadError) and [c.id for c in twelve] == ["502"]  # clear of it: from the events
    assert [urlsplit(c.request.url).path for c in responses.calls].count("/api/v2/tickets/12/comments") == 0


def test_a_stored_cursor_keeps_its_feed_position_beside_the_events_mark_and_a_bad_mark_is_ignored():
    from connectors.zendesk.connector import _EventsMark

    zd = make()
    mark = {"from": 100, "through": 200, "pending": ["7"]}
    assert zd._parse_cursor(json.dumps({"cursor": "abc", "events": mark})) == {"cursor": "abc"}
    parsed = _EventsMark.parse(json.dumps({"cursor": "abc", "events": mark}))
    assert parsed is not None and (parsed.start, parsed.through, parsed.pending) == (100, 200, frozenset({"7"}))
    for bad in ({"from": 300, "through": 200, "pending": []}, {"from": "x"}, [], {"from": 1, "through": 2}):
        assert _EventsMark.parse(json.dumps({"cursor": "abc", "events": bad})) is None
    assert _EventsMark.parse('{"cursor": "abc"}') is None and _EventsMark.parse("not json") is None
    # A ticket the mark speaks for starts after its end (read whole); one it leaves out, or whose comments
    # start before it, keeps its own start.
    since = datetime.fromtimestamp(150, timezone.utc)
    until = datetime.fromtimestamp(400, timezone.utc)
    assert parsed.later_start(CommentAsk("8", "1", since, until)).since == datetime.fromtimestamp(201, timezone.utc)
    assert parsed.later_start(CommentAsk("7", "1", since, until)).since == since
    early = datetime.fromtimestamp(50, timezone.utc)
    assert parsed.later_start(CommentAsk("8", "1", early, until)).since == early
    assert parsed.later_start(CommentAsk("8", None, since, until)).since == since  # nothing read yet
