"""Linear (GraphQL) as a tracker.

The feed reads ``issues`` filtered on ``updatedAt``. Linear's documented
orders are createdAt (default) and updatedAt, most recent first; the
``sort: [IssueSortInput!]`` argument that could ask for ascending order is
marked [INTERNAL] in the schema, so syncd does not rely on it. With newest
first, the high-water mark can only become the next ``since`` once the last
page is read; until then the stored cursor keeps the old ``since`` and the
page cursor (``after``), so a crash mid-pagination resumes where it stopped.

Linear reports most failures as an ``errors`` array on HTTP 200 or 400;
every response is checked. ``RATELIMITED`` is retried by the one retry layer
in :mod:`syncd.http` (through its ``rate_limited`` hook).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Literal

import requests
from pydantic import Field, SecretStr, model_validator

from connectors import linear_queries as q
from connectors.base import (
    ConnectorConfig,
    Page,
    Rejected,
    Tracker,
    WriteResult,
    find_markers,
    marker_token,
    read_secret,
)
from syncd.errors import ApiError, AuthError, ConfigError, NotFound, PayloadError, TransientError
from syncd.http import HttpClient, RateHeaders
from syncd.records import Attachment, Issue, Ref, StateCategory, parse_time

AUTH_CODES = frozenset({"AUTHENTICATION_ERROR", "FORBIDDEN", "UNAUTHENTICATED"})
NOT_FOUND_CODES = frozenset({"ENTITY_NOT_FOUND", "NOT_FOUND"})
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE"})
RATELIMITED = "RATELIMITED"


class LinearConfig(ConnectorConfig):
    kind: Literal["linear"]
    url: str = Field("https://api.linear.app", description="API base; GraphQL is served at {url}/graphql.")
    api_key: SecretStr | None = Field(None, description="Personal API key (sent as it is in Authorization).")
    api_key_file: str | None = Field(None, description="A file holding the personal API key.")
    oauth_token: SecretStr | None = Field(None, description="OAuth access token (sent as Bearer).")
    teams: list[str] = Field(default_factory=list,
                             description="Team keys to follow (ENG); empty follows every team. "
                                         "Also how bare identifiers (ENG-123) are recognised in ticket text.")
    workspace: str | None = Field(None, description="URL slug of the workspace (linear.app/<workspace>/issue/...); "
                                                   "None accepts any workspace.")
    page_size: int = Field(50, ge=1, le=250)
    backfill_days: int = Field(30, ge=0, description="How far back the first poll reads.")
    overlap_seconds: float = Field(5, ge=0, description="How far each poll re-reads before the last high-water mark.")

    @model_validator(mode="after")
    def _one_credential(self) -> "LinearConfig":
        if self.api_key is None and self.api_key_file is None and self.oauth_token is None:
            raise ValueError("no credentials: set api_key (environment variable SYNCD_CONNECTORS__<NAME>__API_KEY), "
                             "api_key_file, or oauth_token")
        return self

    @model_validator(mode="after")
    def _team_keys(self) -> "LinearConfig":
        bad = [t for t in self.teams if not re.fullmatch(r"[A-Za-z0-9_]+", t)]
        if bad:
            raise ValueError(f"teams: {', '.join(map(repr, bad))} is not a team key (letters and digits, e.g. ENG)")
        return self


@dataclass(frozen=True)
class FeedCursor:
    """What the feed stores: where the window starts, and mid-pagination the page cursor and high-water mark."""

    since: datetime
    after: str | None = None
    hwm: datetime | None = None

    def dump(self) -> str:
        out: dict[str, Any] = {"since": iso(self.since)}
        if self.after is not None:
            out["after"] = self.after
        if self.hwm is not None:
            out["hwm"] = iso(self.hwm)
        return json.dumps(out, sort_keys=True)

    @classmethod
    def load(cls, text: str, connector: str) -> "FeedCursor":
        try:
            data = json.loads(text)
            since = parse_time(data["since"])
            if since is None:
                raise ValueError("empty since")
            return cls(since, data.get("after"), parse_time(data.get("hwm")))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError([f"connector {connector}: stored cursor {text[:80]!r} is unreadable "
                               "(want JSON with since/after/hwm); reset this connector's cursor to read "
                               "again from the backfill window"]) from None


def iso(dt: datetime) -> str:
    """UTC ISO-8601 with milliseconds, as Linear writes its own timestamps."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Reject(Exception):
    """Internal: a node that cannot become an Issue."""


def graphql_errors(body: Any) -> list[dict]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def error_code(error: dict) -> str | None:
    ext = error.get("extensions")
    return ext.get("code") if isinstance(ext, dict) else None


def is_rate_limited(response: requests.Response) -> bool:
    """Whether a Linear response is a RATELIMITED GraphQL error (whatever its HTTP status)."""
    if response.status_code not in (200, 400, 429):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return any(error_code(e) == RATELIMITED for e in graphql_errors(body))


class LinearConnector(Tracker):
    kind = "linear"
    text_format = "markdown"
    config_model = LinearConfig
    config: LinearConfig

    def __init__(self, name: str, config: LinearConfig, *,
                 sleep: Callable[[float], None] = time.sleep,
                 wall_clock: Callable[[], float] = time.time):
        self._wall_clock = wall_clock
        super().__init__(name, config, sleep=sleep)

    # -- session ----------------------------------------------------------------

    def make_http(self) -> HttpClient:
        c = self.config
        try:
            api_key = read_secret(c.api_key, c.api_key_file)
        except OSError as exc:
            raise ConfigError([f"connectors.{self.name}.api_key_file: cannot read {c.api_key_file!r} "
                               f"({exc.strerror}); check the path and its permissions"]) from None
        if c.oauth_token is not None:
            authorization = f"Bearer {c.oauth_token.get_secret_value()}"
        elif api_key is not None and api_key.get_secret_value():
            authorization = api_key.get_secret_value()
        else:
            where = f"api_key_file {c.api_key_file!r}" if c.api_key is None else "api_key"
            raise ConfigError([f"connectors.{self.name}: the Linear API key in {where} is empty; "
                               "set it to a personal API key from Linear's settings"])
        return HttpClient(
            self.name, c.url,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
            rate_headers=RateHeaders(remaining="X-RateLimit-Requests-Remaining",
                                     reset="X-RateLimit-Requests-Reset",
                                     limit="X-RateLimit-Requests-Limit"),
            rate_limited=is_rate_limited,
            wall_clock=self._wall_clock,
            **self.http_options(),
        )

    def _graphql(self, operation: str, document: str, variables: dict[str, Any] | None = None,
                 *, mutation: bool = False) -> dict:
        """Send one named operation; return its ``data`` or raise what its ``errors`` say."""
        body = self.http.request_json(
            "POST", "graphql",
            json={"query": document, "variables": variables or {}, "operationName": operation},
            idempotent=not mutation, expect=(400,), endpoint=f"POST /graphql {operation}",
        )
        errors = graphql_errors(body)
        if errors:
            self._raise_for(operation, errors, mutation=mutation)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise PayloadError(self.name, f"{operation}: response has no data object", payload=body)
        return body["data"]

    def _raise_for(self, operation: str, errors: list[dict], *, mutation: bool) -> None:
        first = errors[0]
        code = error_code(first) or ""
        message = str(first.get("message") or "").replace("\n", " ")[:200]
        text = f"{operation}: {code or 'error'}: {message}"
        codes = {error_code(e) for e in errors}
        if codes & AUTH_CODES:
            raise AuthError(self.name, text + " (check the API key or OAuth token and its scopes)")
        if codes & NOT_FOUND_CODES or message.lower().startswith("entity not found"):
            raise NotFound(self.name, text)
        if RATELIMITED in codes:
            raise TransientError(self.name, text, maybe_applied=False)
        if codes & TRANSIENT_CODES:
            raise TransientError(self.name, text, maybe_applied=mutation)
        raise ApiError(self.name, text)

    # -- reads --------------------------------------------------------------------

    def check(self) -> str:
        data = self._graphql("SyncdViewer", q.VIEWER)
        viewer = data.get("viewer")
        if not isinstance(viewer, dict):
            raise PayloadError(self.name, "SyncdViewer: no viewer in the response", payload=data)
        return f"{viewer.get('name') or viewer.get('id')} <{viewer.get('email') or 'no email'}>"

    def poll(self, cursor: str | None) -> Iterator[Page]:
        if cursor:
            state = FeedCursor.load(cursor, self.name)
        else:
            start = datetime.fromtimestamp(self._wall_clock(), timezone.utc)
            state = FeedCursor(start - timedelta(days=self.config.backfill_days))
        since, after, hwm = state.since, state.after, state.hwm
        polled_at = datetime.fromtimestamp(self._wall_clock(), timezone.utc)
        seen: set[tuple[str, str]] = set()
        while True:
            variables = {"filter": self._feed_filter(since), "first": self.config.page_size, "after": after}
            data = self._graphql("SyncdIssues", q.ISSUES, variables)
            nodes, has_next, end_cursor = self._connection(data)
            records: list[Issue] = []
            rejected: list[Rejected] = []
            for node in nodes:
                updated = _node_time(node)
                if updated is not None and (hwm is None or updated > hwm):
                    hwm = updated
                ident = node.get("id") if isinstance(node, dict) else None
                if ident and updated is not None:
                    if (ident, iso(updated)) in seen:
                        continue
                    seen.add((ident, iso(updated)))
                try:
                    records.append(self.normalise(node))
                except _Reject as exc:
                    rejected.append(Rejected(_node_label(node), str(exc), node))
            if has_next:
                after = end_cursor
                yield Page(records, FeedCursor(since, after, hwm).dump(), done=False, rejected=rejected)
                continue
            # The overlap re-reads what changed just before this poll, in case
            # the feed showed it late; once a poll is quiet for longer than the
            # overlap, the window closes on the high-water mark, so an idle feed
            # does not re-read a burst of old changes forever.
            overlap = timedelta(seconds=self.config.overlap_seconds)
            next_since = max(since, min(hwm, polled_at - overlap)) if hwm is not None else since
            yield Page(records, FeedCursor(next_since).dump(), done=True, rejected=rejected)
            return

    def _feed_filter(self, since: datetime) -> dict[str, Any]:
        flt: dict[str, Any] = {"updatedAt": {"gt": iso(since)}}
        if self.config.teams:
            flt["team"] = {"key": {"in": list(self.config.teams)}}
        return flt

    def _connection(self, data: dict) -> tuple[list, bool, str | None]:
        conn = data.get("issues")
        if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
            raise PayloadError(self.name, "SyncdIssues: expected issues.nodes to be a list", payload=data)
        info = conn.get("pageInfo")
        if not isinstance(info, dict) or not isinstance(info.get("hasNextPage"), bool):
            raise PayloadError(self.name, "SyncdIssues: expected issues.pageInfo.hasNextPage", payload=data)
        end_cursor = info.get("endCursor")
        if info["hasNextPage"] and not isinstance(end_cursor, str):
            raise PayloadError(self.name, "SyncdIssues: hasNextPage without an endCursor", payload=data)
        return conn["nodes"], info["hasNextPage"], end_cursor

    def get_issue(self, ref: str) -> Issue:
        data = self._graphql("SyncdIssue", q.ISSUE, {"id": ref})
        node = data.get("issue")
        if node is None:
            raise NotFound(self.name, f"SyncdIssue: no issue {ref}")
        try:
            return self.normalise(node)
        except _Reject as exc:
            raise PayloadError(self.name, f"SyncdIssue: issue {ref}: {exc}", record_id=ref, payload=node) from None

    def normalise(self, node: Any) -> Issue:
        """One ``Issue`` node → :class:`Issue`; raises _Reject naming every field that is missing."""
        if not isinstance(node, dict):
            raise _Reject(f"issue node is {type(node).__name__}, not an object")
        missing = [k for k in ("id", "identifier", "url") if not isinstance(node.get(k), str) or not node[k]]
        updated = _node_time(node)
        if updated is None:
            missing.append("updatedAt")
        state = node.get("state") if isinstance(node.get("state"), dict) else {}
        try:
            category = StateCategory(state.get("type"))
        except ValueError:
            category = None
            missing.append(f"state.type (got {state.get('type')!r})" if state.get("type") else "state.type")
        if missing:
            raise _Reject("missing or invalid " + ", ".join(missing))
        assignee = node.get("assignee") if isinstance(node.get("assignee"), dict) else {}
        team = node.get("team") if isinstance(node.get("team"), dict) else {}
        return Issue(
            ref=Ref(self.name, node["id"]),
            key=node["identifier"],
            url=node["url"],
            title=_str(node.get("title")) or "",
            state=category,
            state_name=_str(state.get("name")) or category.value,
            updated_at=updated,
            assignee=_str(assignee.get("name")) or _str(assignee.get("displayName")) or _str(assignee.get("email")),
            team=_str(team.get("key")),
            attachments=_attachments(node),
            public=False,
        )

    # -- links ----------------------------------------------------------------------

    def link_patterns(self) -> list[str]:
        workspace = re.escape(self.config.workspace) if self.config.workspace else r"[\w-]+"
        patterns = [rf"https?://linear\.app/{workspace}/issue/(?P<ref>[A-Za-z0-9_]+-\d+)(?![\w-])(?:/[\w%.~-]*)?"]
        if self.config.teams:
            keys = "|".join(re.escape(t) for t in self.config.teams)
            patterns.append(rf"(?<![\w/-])(?P<ref>(?:{keys})-\d+)(?![\w-])")
        return patterns

    # -- writes ---------------------------------------------------------------------

    def add_comment(self, issue_id: str, body: str, key: str) -> WriteResult:
        text = f"{body.rstrip()}\n\n<!-- {marker_token(key)} -->"
        data = self._graphql("SyncdCommentCreate", q.COMMENT_CREATE,
                             {"input": {"issueId": issue_id, "body": text}}, mutation=True)
        return self._write_result("SyncdCommentCreate", data.get("commentCreate"), "comment")

    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        attachment = {"issueId": issue_id, "url": url, "title": title, "subtitle": subtitle,
                      "metadata": {"syncd": key}}
        data = self._graphql("SyncdAttachmentCreate", q.ATTACHMENT_CREATE, {"input": attachment}, mutation=True)
        return self._write_result("SyncdAttachmentCreate", data.get("attachmentCreate"), "attachment")

    def _write_result(self, operation: str, payload: Any, field: str) -> WriteResult:
        if not isinstance(payload, dict) or payload.get("success") is not True:
            raise ApiError(self.name, f"{operation}: Linear did not report success")
        obj = payload.get(field)
        if not isinstance(obj, dict) or not obj.get("id"):
            raise PayloadError(self.name, f"{operation}: response has no {field}.id", payload=payload)
        return WriteResult(updated_at=parse_time(obj.get("updatedAt")), id=obj["id"])

    def find_marker(self, issue_id: str, key: str) -> bool:
        token = marker_token(key)
        data = self._graphql("SyncdFindMarker", q.FIND_MARKER,
                             {"id": issue_id, "comments": {"body": {"contains": token}}})
        issue = data.get("issue")
        if not isinstance(issue, dict):
            raise NotFound(self.name, f"SyncdFindMarker: no issue {issue_id}")
        comments = (issue.get("comments") or {}).get("nodes") or []
        if any(key in find_markers(c.get("body")) for c in comments if isinstance(c, dict)):
            return True
        attachments = (issue.get("attachments") or {}).get("nodes") or []
        return any(isinstance(a, dict) and isinstance(a.get("metadata"), dict) and a["metadata"].get("syncd") == key
                   for a in attachments)


def _node_time(node: Any) -> datetime | None:
    if not isinstance(node, dict) or not isinstance(node.get("updatedAt"), str):
        return None
    try:
        parsed = parse_time(node["updatedAt"])
        if parsed is not None:
            iso(parsed)  # in range once made UTC
        return parsed
    except (ValueError, OverflowError):
        return None


def _str(value: Any) -> str | None:
    """A string field of a payload, or None when it is anything else."""
    return value if isinstance(value, str) else None


def _node_label(node: Any) -> str | None:
    """The best name for a rejected node: its id, else its identifier or URL."""
    if not isinstance(node, dict):
        return None
    for k in ("id", "identifier", "url"):
        if isinstance(node.get(k), str) and node[k]:
            return node[k]
    return None


def _attachments(node: dict) -> tuple[Attachment, ...]:
    conn = node.get("attachments")
    nodes = conn.get("nodes") if isinstance(conn, dict) else None
    out = []
    for a in nodes if isinstance(nodes, list) else ():
        if not isinstance(a, dict) or not isinstance(a.get("url"), str):
            continue
        metadata = a.get("metadata") if isinstance(a.get("metadata"), dict) else {}
        marker = metadata.get("syncd") if isinstance(metadata.get("syncd"), str) else None
        if marker is None:
            found = find_markers(f"{_str(a.get('title')) or ''} {a['url']}")
            marker = found[0] if found else None
        out.append(Attachment(a["url"], _str(a.get("title")) or "", marker))
    return tuple(out)
