"""What ``syncd status`` and the daemon's status page show, gathered in one place.

:func:`gather` reads the store (and, in the daemon, its live view of each
connector) into plain JSON-ready data; :func:`render_text` turns it into the
table ``syncd status`` prints on a terminal, :func:`render_html` into the page
the health address serves at ``/``. A new fact (a store backend's replicas,
say) is added to :func:`gather` and shows in all three.

Ages are seconds before ``now`` (the caller's clock); times are ISO 8601 UTC.
Per connector:

- ``last_success``: the end of its last poll that went through;
- ``lag_seconds``: how long the oldest write still waiting to go to it has
  waited (0 when none waits): how far behind its side of the links is;
- ``cursor_age_seconds``: since its feed's position last moved (a quiet feed
  grows old too; an old cursor beside a recent success is a feed that brings
  nothing new);
- ``last_error`` and ``last_error_at``: its last failed poll (``error`` is
  the failure in hand, None once a poll went through again).
"""

from __future__ import annotations

import html
import ipaddress
from datetime import datetime
from typing import Any, Mapping

from syncd.errors import until_text
from syncd.ratelimits import waits_in_store
from syncd.records import Ref, format_time, parse_time
from syncd.store import Store

HISTORY_SHOWN = 20
DEAD_SHOWN = 20
QUARANTINE_SHOWN = 20
REFRESH_SECONDS = 10

# What each kind of write is, in the words the page and the table use.
WRITE_WORDS = {
    "ticket.update": "ticket update",
    "ticket.followup": "follow-up ticket",
    "issue.comment": "comment on the issue",
    "issue.upsert_comment": "comment on the issue",
    "issue.attach": "ticket shown on the issue",
    "issue.create": "new issue",
    "issue.make_opaque": "privacy rewrite",
}

# What each kind of event in the history is, in words (others: the kind with spaces).
EVENT_WORDS = {
    "followup_ticket": "follow-up ticket",
    "privacy": "made opaque (public place)",
    "privacy_kept": "left as edited (public place)",
    "issue_gone": "issue gone",
    "dead_letter": "dead letter",
}


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else round(max(0.0, (now - at).total_seconds()), 1)


def gather(store: Store, settings: Any, now: datetime, live: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything status shows, as JSON-ready data.

    ``live``: the running daemon's own view (what it publishes to the store,
    see ``Daemon.view``); without it, the view the daemon last published.
    """
    stats = store.stats()
    published = dict(live) if live is not None else store.daemon_status()
    views = published.get("connectors") or {}
    polls = store.polls()
    waiting = store.waiting_by_connector()
    waits = waits_in_store(store, now)
    cursors = stats.get("cursors", {})
    names = list(settings.connectors) + sorted(set(views) - set(settings.connectors))
    connectors: dict[str, Any] = {}
    for name in names:
        found = views.get(name)
        view: dict[str, Any] = found if isinstance(found, dict) else {}
        seen = polls.get(name, {})
        success, failed_at = seen.get("last_success"), seen.get("last_error_at")
        count, oldest = waiting.get(name, (0, None))
        cursor = cursors.get(name) or {}
        wait = waits.get(name)
        config = settings.connectors.get(name)
        if live is None and (success or failed_at):
            # From the store: the last poll noted (by the daemon or by `syncd once`) says.
            failing = failed_at is not None and (success is None or failed_at > success)
            error = seen.get("last_error") if failing else None
        else:
            error = view.get("error")
        connectors[name] = {
            "kind": config.kind if config is not None else None,
            "role": "helpdesk" if name == settings.sync.helpdesk else "tracker",
            "ok": not error and not view.get("delivery_paused"),
            "error": error,
            "polling_paused": bool(view.get("polling_paused")),
            "delivery_paused": view.get("delivery_paused"),
            "rate_limited_until": format_time(wait.until) if wait else None,
            "rate_limited_by": wait.service if wait else None,
            "last_success": format_time(success),
            "last_success_age_seconds": _age(success, now),
            "last_error": seen.get("last_error"),
            "last_error_at": format_time(failed_at),
            "writes_waiting": count,
            "lag_seconds": _age(oldest, now) or 0.0,
            "cursor_moved_at": format_time(cursor.get("updated_at")),
            "cursor_age_seconds": _age(cursor.get("updated_at"), now),
        }
    dead_rows = store.list_outbox("dead", limit=DEAD_SHOWN)
    events = list(reversed(store.events_since(max(0, store.last_event_id() - HISTORY_SHOWN), limit=HISTORY_SHOWN)))
    refs = {Ref(row.connector, row.target) for row in dead_rows}
    refs |= {ref for event in events for ref in (event.ticket, event.issue) if ref is not None}
    keys = {ref: snapshot.key for ref, snapshot in store.get_snapshots(refs).items()}

    def named(ref: Ref | None) -> str | None:
        return None if ref is None else f"{ref.connector} {keys.get(ref) or ref.id}"

    dead = [
        {
            "id": row.id,
            "connector": row.connector,
            "target": row.target,
            "to": named(Ref(row.connector, row.target)),
            "write": WRITE_WORDS.get(row.op, row.op),
            "attempts": row.attempts,
            "error": row.last_error,
            "planned_at": format_time(row.created_at),
        }
        for row in dead_rows
    ]
    quarantined = store.list_quarantine()
    by_state = stats.get("promises", {})
    history = [
        {
            "at": format_time(event.at),
            "what": EVENT_WORDS.get(event.kind, event.kind.replace("_", " ")),
            "summary": event.summary,
            "ticket": named(event.ticket),
            "issue": named(event.issue),
        }
        for event in events
    ]
    outbox = dict(stats["outbox"])
    return {
        "generated_at": format_time(now),
        "store": {"path": stats["path"], "schema_version": stats["schema_version"], "file_size": stats["file_size"]},
        "backend": stats.get("backend", "sqlite"),
        # Replicas sharing a PostgreSQL store: which holds which feed (empty for one daemon on SQLite).
        "leases": {
            feed: {
                "holder": lease["holder"],
                "acquired_at": format_time(lease["acquired_at"]),
                "expires_at": format_time(lease["expires_at"]),
                "live": bool(lease["live"]),
            }
            for feed, lease in (stats.get("leases") or {}).items()
        },
        "daemon": {
            "pid": published.get("pid"),
            "published_at": published.get("at"),
            "cycles": published.get("cycles"),
        },
        "connectors": connectors,
        "links": stats["links"],
        "outbox": outbox,
        "backlog": outbox.get("pending", 0) + outbox.get("sending", 0),
        "oldest_pending_seconds": stats["oldest_pending_seconds"],
        "dead_letters": dead,
        "quarantine": {
            "open": stats["quarantine_open"],
            "records": [
                {
                    "id": row.id,
                    "connector": row.connector,
                    "record": row.record_id,
                    "reason": row.reason,
                    "times": row.count,
                    "last_at": format_time(row.last_at),
                }
                for row in quarantined[:QUARANTINE_SHOWN]
            ],
        },
        "promises": {
            "past_due": len(store.promises_past_due(now)),
            "broken": by_state.get("broken", 0),
            "by_state": by_state,
        },
        "last_reload": published.get("last_reload"),
        "history": history,
    }


# -- words -----------------------------------------------------------------------------


def age_text(seconds: float | None) -> str:
    """ "42s", "3m 05s", "2h 10m", "4d 03h"; "-" for none."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def time_text(iso: str | None) -> str:
    """An ISO time as "2026-12-01 21:50:03 UTC"; "-" for none."""
    at = parse_time(iso)
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def connector_state(c: Mapping[str, Any], now: datetime) -> str:
    """One phrase for a connector's state."""
    if c["rate_limited_until"]:
        until = parse_time(c["rate_limited_until"])
        assert until is not None
        return f"waiting for {c['rate_limited_by']}'s rate limit until {until_text(until, now)}"
    if c["polling_paused"]:
        return "credentials refused; retried every 5 minutes"
    if c["delivery_paused"]:
        return "writes paused: credentials refused"
    if c["error"]:
        return "failing"
    if c["last_success"] is None:
        return "not polled yet"
    return "ok"


def _since(iso: str | None, seconds: float | None) -> str:
    return "-" if iso is None else f"{age_text(seconds)} ago"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return lines


def _one_line(text: str | None, width: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def render_text(status: Mapping[str, Any], now: datetime) -> str:
    """The table ``syncd status`` prints on a terminal."""
    out: list[str] = []
    daemon = status["daemon"]
    out.append(f"store {status['store']['path']} (schema {status['store']['schema_version']})")
    if daemon.get("pid"):
        out.append(f"daemon: pid {daemon['pid']}, last seen {time_text(daemon.get('published_at'))}")
    else:
        out.append("daemon: has not run on this store (what follows is from `syncd once`)")
    out.append("")
    rows = []
    for name, c in status["connectors"].items():
        rows.append(
            [
                name,
                c["kind"] or "-",
                connector_state(c, now),
                _since(c["last_success"], c["last_success_age_seconds"]),
                age_text(c["lag_seconds"]) if c["writes_waiting"] else "-",
                age_text(c["cursor_age_seconds"]),
                _one_line(f"{_since(c['last_error_at'], _age(parse_time(c['last_error_at']), now))}: {c['last_error']}")
                if c["last_error"]
                else "-",
            ]
        )
    out += _table(["connector", "kind", "state", "last success", "lag", "cursor age", "last error"], rows)
    out.append("")
    box = status["outbox"]
    promises = status["promises"]
    reload = status["last_reload"]
    facts = [
        ("links", f"{status['links']['active']} active, {status['links']['ended']} ended"),
        (
            "outbox",
            f"{status['backlog']} waiting"
            + (f" (oldest {age_text(status['oldest_pending_seconds'])})" if status["backlog"] else "")
            + f", {box.get('done', 0)} delivered, {box.get('dropped', 0)} dropped",
        ),
        ("dead letters", str(box.get("dead", 0)) + ("  (syncd outbox list --state dead)" if box.get("dead") else "")),
        (
            "quarantine",
            str(status["quarantine"]["open"]) + ("  (syncd quarantine list)" if status["quarantine"]["open"] else ""),
        ),
        ("promises", f"{promises['past_due']} past due, {promises['broken']} broken"),
        (
            "last reload",
            "none since start"
            if not reload
            else f"{reload['outcome']} {time_text(reload['at'])}"
            + (f": {reload['reason']}" if reload.get("reason") else ""),
        ),
    ]
    width = max(len(k) for k, _ in facts)
    out += [f"{k.ljust(width)}  {v}" for k, v in facts]
    for d in status["dead_letters"]:
        out.append(f"  dead {d['id']}: {d['write']}, {d['to']}: {_one_line(d['error'], 80)}")
    if status["leases"]:
        out.append("")
        out += _table(
            ["feed", "polled by replica", "until"],
            [
                [
                    feed.removeprefix("poll:"),
                    lease["holder"],
                    time_text(lease["expires_at"]) if lease["live"] else "lapsed",
                ]
                for feed, lease in status["leases"].items()
            ],
        )
    waits = [(n, c) for n, c in status["connectors"].items() if c["rate_limited_until"]]
    if waits:
        out.append("")
        out += [f"{name}: {connector_state(c, now)}" for name, c in waits]
    return "\n".join(out) + "\n"


# -- the page ------------------------------------------------------------------------------


def loopback(peer: str) -> bool:
    """Whether a client address is this machine's loopback (the page needs no login there)."""
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.bad{color:#a00;font-weight:bold}
.ok{color:#070}
small{color:#666}
"""


_STATE_CLASS = {"ok": "ok", "not polled yet": "quiet"}


def _e(value: object) -> str:
    return html.escape("-" if value is None or value == "" else str(value), quote=True)


def _html_table(headers: list[str], rows: list[list[str]], cls: str, empty: str) -> str:
    if not rows:
        return f'<p class="{cls}">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if headers else ""
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


def render_html(status: Mapping[str, Any], now: datetime, refresh: int = REFRESH_SECONDS) -> str:
    """The status page: plain HTML, every value escaped, refreshing itself every ``refresh`` seconds."""
    connectors = []
    for name, c in status["connectors"].items():
        state = connector_state(c, now)
        connectors.append(
            [
                _e(name),
                _e(c["kind"]),
                f'<span class="{_STATE_CLASS.get(state, "bad")}">{_e(state)}</span>',
                _e(f"{time_text(c['last_success'])} ({_since(c['last_success'], c['last_success_age_seconds'])})")
                if c["last_success"]
                else "-",
                _e(
                    f"{c['writes_waiting']} waiting, oldest {age_text(c['lag_seconds'])}"
                    if c["writes_waiting"]
                    else "-"
                ),
                _e(age_text(c["cursor_age_seconds"])),
                _e(f"{time_text(c['last_error_at'])}: {c['last_error']}") if c["last_error"] else "-",
            ]
        )
    box = status["outbox"]
    reload = status["last_reload"]
    facts = [
        ("Links", f"{status['links']['active']} active, {status['links']['ended']} ended"),
        (
            "Writes waiting",
            f"{status['backlog']}"
            + (f" (oldest {age_text(status['oldest_pending_seconds'])})" if status["backlog"] else ""),
        ),
        ("Delivered", box.get("done", 0)),
        ("Dead letters", box.get("dead", 0)),
        ("Quarantined records", status["quarantine"]["open"]),
        ("Promises past due", status["promises"]["past_due"]),
        ("Promises broken", status["promises"]["broken"]),
        (
            "Last reload",
            "none since start"
            if not reload
            else f"{reload['outcome']} at {time_text(reload['at'])}"
            + (f": {reload['reason']}" if reload.get("reason") else ""),
        ),
    ]
    dead = [
        [_e(d["id"]), _e(d["write"]), _e(d["to"]), _e(d["attempts"]), _e(d["error"])] for d in status["dead_letters"]
    ]
    quarantine = [
        [_e(q["id"]), _e(q["connector"]), _e(q["record"]), _e(q["times"]), _e(q["reason"])]
        for q in status["quarantine"]["records"]
    ]
    history = [
        [_e(time_text(h["at"])), _e(h["what"]), _e(h["ticket"]), _e(h["issue"]), _e(h["summary"])]
        for h in status["history"]
    ]
    replicas = [
        [
            _e(feed.removeprefix("poll:")),
            _e(lease["holder"]),
            _e(time_text(lease["expires_at"]) if lease["live"] else "lapsed"),
        ]
        for feed, lease in status["leases"].items()
    ]
    healthy = (
        all(c["ok"] for c in status["connectors"].values())
        and not box.get("dead")
        and not status["quarantine"]["open"]
        and not status["promises"]["broken"]
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{int(refresh)}">',
        "<title>syncd status</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<h1>syncd: <span id="overall" class="{"ok" if healthy else "bad"}">'
        f"{'all well' if healthy else 'needs attention'}</span></h1>",
        f"<p><small>As of {_e(time_text(status['generated_at']))}; this page refreshes every {int(refresh)} s. "
        f"Store {_e(status['store']['path'])}.</small></p>",
        "<h2>Connectors</h2>",
        _html_table(
            ["Connector", "Kind", "State", "Last success", "Lag", "Cursor age", "Last error"],
            connectors,
            "connectors",
            "no connectors",
        ),
        "<h2>At a glance</h2>",
        _html_table([], [[_e(k), _e(v)] for k, v in facts], "facts", ""),
        *(
            [
                "<h2>Replicas</h2>",
                _html_table(["Feed", "Polled by replica", "Until"], replicas, "replicas", "none"),
            ]
            if replicas
            else []
        ),
        "<h2>Dead letters</h2>",
        _html_table(["Id", "Write", "To", "Attempts", "Error"], dead, "dead-letters", "none"),
        "<h2>Quarantine</h2>",
        _html_table(["Id", "Connector", "Record", "Times", "Reason"], quarantine, "quarantine", "none"),
        "<h2>Latest history</h2>",
        _html_table(["When", "What", "Ticket", "Issue", "Summary"], history, "history", "nothing yet"),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
