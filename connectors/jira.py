"""Jira Cloud (REST v3) as a tracker.

The change feed is ``POST /rest/api/3/search/jql`` ordered by ``updated``.
JQL reads dates to the minute in the API user's time zone, so each poll asks
from a little before the last change it delivered (``overlap_minutes``) and
drops what it already delivered by (issue id, updated). The cursor is JSON::

    {"since": "<ISO instant of the newest delivered change>",
     "seen": [[id, updated], ...],   # delivered pairs inside the overlap
     "tz": "Europe/Paris",           # the user's time zone, read once
     "from": "2026/11/21 12:58",     # JQL lower bound of an unfinished query
     "token": "..."}                 # its nextPageToken

so an idle poll is one request, and resuming an interrupted poll neither
skips nor repeats a change. Once a poll has read to the end, ``since`` is
also moved up to ``SETTLED`` before that poll began: a change older than that
has had time to show in search, so a burst of changes (a bulk edit of
thousands of issues) is not re-read by every later poll while nothing newer
happens.

Writes: comments are ADF (see :mod:`connectors.adf`) and carry the marker as
a comment property ``syncd = {"key": KEY}`` (invisible to people); a ticket
is shown as a remote link whose ``globalId`` comes from the ticket URL, so
posting it again updates the same link instead of adding one.

``find_marker`` reads the issue's comments with ``expand=properties``, newest
first: one request unless the issue has more than 100 comments. Remote links
carry no marker: they are idempotent by ``globalId``, so re-sending one after
a crash is harmless.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.adf import to_adf
from connectors.base import ConnectorConfig, Page, Rejected, Tracker, WriteResult, read_secret
from syncd.errors import ApiError, ConfigError, NotFound, PayloadError
from syncd.http import HttpClient, RateHeaders, expect_dict
from syncd.records import Issue, Ref, StateCategory

API = "/rest/api/3"
# Only what normalisation reads: Jira's payload grows with every field asked for.
ISSUE_FIELDS = ("summary", "status", "assignee", "updated", "resolution", "project", "issuetype")
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
PROPERTY_KEY = "syncd"
COMMENT_PAGE = 100
# How long after a change syncd trusts that search shows it (index lag and
# clock skew between syncd and the site, with room to spare).
SETTLED = timedelta(minutes=5)

_CATEGORIES = {
    "new": StateCategory.UNSTARTED,
    "indeterminate": StateCategory.STARTED,
    "done": StateCategory.COMPLETED,
}
_PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")


class JiraConfig(ConnectorConfig):
    """``[connectors.NAME]`` with ``kind = "jira"``."""

    kind: Literal["jira"] = "jira"
    email: str | None = Field(None, description="Account email for Basic auth with an API token.")
    api_token: SecretStr | None = Field(None, description="API token (prefer api_token_file or the environment).")
    api_token_file: str | None = Field(None, description="File holding the API token.")
    oauth_token: SecretStr | None = Field(None, description="OAuth 2.0 bearer token, instead of email + API token.")
    projects: list[str] = Field(min_length=1, description="Project keys to follow (e.g. [\"ENG\", \"OPS\"]).")
    backfill_days: int = Field(30, ge=0, le=3650, description="How far back the first poll reads.")
    overlap_minutes: int = Field(2, ge=1, le=120, description="How far each poll re-reads before its cursor.")
    page_size: int = Field(100, ge=1, le=5000)
    time_zone: str | None = Field(None, description="The API user's time zone for JQL; None: read it from /myself.")
    cancel_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Duplicate", "Cannot Reproduce"],
        description="Resolutions that mean the issue was cancelled rather than completed.")
    ticket_icon_url: str | None = Field(None, description="16x16 icon shown beside linked tickets.")

    @field_validator("projects")
    @classmethod
    def _check_projects(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not _PROJECT_KEY_RE.match(p)]
        if bad:
            raise ValueError(f"not Jira project keys (upper case, like ENG): {', '.join(map(repr, bad))}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_time_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> "JiraConfig":
        if self.oauth_token is not None:
            if self.api_token is not None or self.api_token_file is not None:
                raise ValueError("set either oauth_token or api_token/api_token_file, not both")
            return self
        if self.api_token is not None and self.api_token_file is not None:
            raise ValueError("set api_token or api_token_file, not both")
        if self.api_token is None and self.api_token_file is None:
            raise ValueError("credentials missing: set email and api_token_file (or api_token), or oauth_token")
        if not self.email:
            raise ValueError("email is required with an API token (Basic auth is email + token)")
        return self


class JiraConnector(Tracker):
    kind: ClassVar[str] = "jira"
    config_model: ClassVar[type[ConnectorConfig]] = JiraConfig
    text_format: ClassVar[str] = "adf"
    config: JiraConfig

    def __init__(self, name: str, config: JiraConfig, *, sleep: Callable[[float], None] | None = None,
                 now: Callable[[], datetime] | None = None):
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._time_zone: str | None = config.time_zone
        kwargs = {"sleep": sleep} if sleep is not None else {}
        super().__init__(name, config, **kwargs)

    # -- session ----------------------------------------------------------------

    def make_http(self) -> HttpClient:
        c = self.config
        headers = {"Accept": "application/json"}
        auth = None
        if c.oauth_token is not None:
            headers["Authorization"] = f"Bearer {c.oauth_token.get_secret_value()}"
        else:
            try:
                token = read_secret(c.api_token, c.api_token_file)
            except OSError as exc:
                raise ConfigError([f"connectors.{self.name}.api_token_file: cannot read {c.api_token_file} "
                                   f"({exc.strerror or exc}); check the path and its permissions"]) from None
            if token is None or not token.get_secret_value():
                raise ConfigError([f"connectors.{self.name}.api_token_file: {c.api_token_file} is empty; "
                                   "put the Jira API token in it"])
            auth = requests.auth.HTTPBasicAuth(c.email or "", token.get_secret_value())
        return HttpClient(
            self.name, c.url, auth=auth, headers=headers,
            rate_headers=RateHeaders(remaining="X-RateLimit-Remaining", limit="X-RateLimit-Limit"),
            **self.http_options(),
        )

    # -- reads ------------------------------------------------------------------

    def check(self) -> str:
        me = expect_dict(self.name, self.http.request_json("GET", f"{API}/myself"), "GET /myself")
        if self._time_zone is None and isinstance(me.get("timeZone"), str):
            self._time_zone = me["timeZone"]
        who = me.get("emailAddress") or me.get("displayName") or me.get("accountId")
        return str(who or "unknown user")

    def user_time_zone(self) -> ZoneInfo:
        """The zone JQL dates are read in: configured, or the user's from /myself."""
        if self._time_zone is None:
            self.check()
        try:
            return ZoneInfo(self._time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise PayloadError(self.name, f"GET /myself: unknown timeZone {self._time_zone!r}; "
                               f"set time_zone in connectors.{self.name}") from None

    def poll(self, cursor: str | None) -> Iterator[Page]:
        state = self._load_cursor(cursor)
        started = self._now()
        if state.get("tz") and self._time_zone is None:
            self._time_zone = state["tz"]
        tz = self.user_time_zone()
        since = _parse_instant(state.get("since")) or self._now() - timedelta(days=self.config.backfill_days)
        seen = {(str(i), str(u)) for i, u in state.get("seen", [])}
        token = state.get("token") or None
        jql_from = state.get("from") if token else None
        if not jql_from:
            token = None
            jql_from = self.jql_lower_bound(since, tz)
        delivered: set[tuple[str, str]] = set()
        while True:
            try:
                body = self._search(jql_from, token)
            except ApiError as exc:
                if token and exc.status == 400:  # an expired or foreign page token
                    token, jql_from = None, self.jql_lower_bound(since, tz)
                    continue
                raise
            issues = body.get("issues")
            if not isinstance(issues, list):
                raise PayloadError(self.name, "POST /search/jql: 'issues' is not a list", payload=body)
            records: list[Issue] = []
            rejected: list[Rejected] = []
            for raw in issues:
                pair = _pair(raw)
                if pair is not None and (pair in seen or pair in delivered):
                    continue
                if pair is not None:
                    # Delivered or quarantined: either way, handled once.
                    delivered.add(pair)
                    since = max(since, _parse_instant(pair[1]) or since)
                try:
                    records.append(self.normalise(raw))
                except PayloadError as exc:
                    rejected.append(Rejected(exc.record_id, str(exc), raw))
            token = body.get("nextPageToken") or None
            done = bool(body.get("isLast", token is None)) or token is None
            if done:
                since = max(since, started - SETTLED)
            seen = self._boundary(seen | delivered, since, tz)
            next_state: dict[str, Any] = {
                "since": since.isoformat(), "seen": sorted(map(list, seen)), "tz": str(tz.key),
            }
            if not done:
                next_state.update({"from": jql_from, "token": token})
            yield Page(records, json.dumps(next_state, sort_keys=True), done, rejected)
            if done:
                return

    def jql_lower_bound(self, since: datetime, tz: ZoneInfo) -> str:
        """The JQL ``updated >=`` bound for ``since``: its minute, less the overlap.

        Where a wall time occurs twice (the hour repeated when clocks go
        back), Jira may read it as the later instant; step back until both
        readings are at or before the bound so nothing is skipped.
        """
        bound = since.astimezone(tz).replace(second=0, microsecond=0) - timedelta(minutes=self.config.overlap_minutes)
        for _ in range(4):
            wall = bound.replace(tzinfo=None)
            latest = max(wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc),
                         wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc))
            if latest <= bound.astimezone(timezone.utc):
                break
            bound = (bound - timedelta(hours=1)).astimezone(tz)
        return bound.strftime(JQL_TIME_FORMAT)

    def jql(self, lower_bound: str) -> str:
        projects = ", ".join(f'"{p}"' for p in self.config.projects)
        return f'project in ({projects}) AND updated >= "{lower_bound}" ORDER BY updated ASC'

    def _search(self, jql_from: str, token: str | None) -> dict:
        payload: dict[str, Any] = {
            "jql": self.jql(jql_from),
            "fields": list(ISSUE_FIELDS),
            "maxResults": self.config.page_size,
        }
        if token:
            payload["nextPageToken"] = token
        body = self.http.request_json("POST", f"{API}/search/jql", json=payload, idempotent=True)
        return expect_dict(self.name, body, "POST /search/jql")

    def _boundary(self, pairs: set[tuple[str, str]], since: datetime, tz: ZoneInfo) -> set[tuple[str, str]]:
        """Keep only the pairs the next query can return again (inside its window)."""
        # fold=0 is the earlier reading of a repeated wall time: keep enough.
        floor = datetime.strptime(self.jql_lower_bound(since, tz), JQL_TIME_FORMAT).replace(tzinfo=tz, fold=0)
        floor_utc = floor.astimezone(timezone.utc)
        keep = set()
        for ident, updated in pairs:
            when = _parse_instant(updated)
            if when is None or when >= floor_utc:
                keep.add((ident, updated))
        return keep

    def _load_cursor(self, cursor: str | None) -> dict:
        if not cursor:
            return {}
        try:
            state = json.loads(cursor)
        except ValueError:
            raise ConfigError([f"connectors.{self.name}: stored cursor is not JSON; "
                               "reset it with a backfill of this connector"]) from None
        if not isinstance(state, dict):
            raise ConfigError([f"connectors.{self.name}: stored cursor is not a JSON object; "
                               "reset it with a backfill of this connector"])
        return state

    def get_issue(self, ref: str) -> Issue:
        body = self.http.request_json("GET", f"{API}/issue/{_path(ref, self.name)}", params={"fields": ",".join(ISSUE_FIELDS)},
                                      endpoint=f"GET {API}/issue/{{issueIdOrKey}}")
        return self.normalise(expect_dict(self.name, body, f"GET /issue/{ref}", record_id=ref))

    # -- normalisation ------------------------------------------------------------

    def normalise(self, raw: Any) -> Issue:
        """A v3 issue object → Issue; PayloadError naming the issue if it lacks what we need."""
        ident = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") is not None else None
        record = ident or (raw.get("key") if isinstance(raw, dict) else None)

        def bad(reason: str) -> PayloadError:
            return PayloadError(self.name, f"issue {record or '?'}: {reason}", record_id=record, payload=raw)

        if not isinstance(raw, dict):
            raise bad("not an object")
        if not ident:
            raise bad("no id")
        key = raw.get("key")
        fields = raw.get("fields")
        if not isinstance(key, str) or not key:
            raise bad("no key")
        if not isinstance(fields, dict):
            raise bad("no fields")
        summary = fields.get("summary")
        if not isinstance(summary, str):
            raise bad("fields.summary missing")
        status = fields.get("status")
        if not isinstance(status, dict) or not isinstance(status.get("name"), str):
            raise bad("fields.status.name missing")
        category = status.get("statusCategory")
        category_key = category.get("key") if isinstance(category, dict) else None
        if not isinstance(category_key, str) or category_key not in _CATEGORIES:
            raise bad(f"fields.status.statusCategory.key is {category_key!r}, not new/indeterminate/done")
        updated = _parse_instant(fields.get("updated"))
        if updated is None:
            raise bad(f"fields.updated is not a timestamp: {fields.get('updated')!r}")
        resolution = fields.get("resolution")
        resolution_name = resolution.get("name") if isinstance(resolution, dict) else None
        if not isinstance(resolution_name, str):
            resolution_name = None
        state = _CATEGORIES[category_key]
        if state is StateCategory.COMPLETED and resolution_name in self.config.cancel_resolutions:
            state = StateCategory.CANCELED
        assignee = fields.get("assignee")
        project = fields.get("project")
        team = project.get("key") if isinstance(project, dict) and isinstance(project.get("key"), str) \
            else key.rsplit("-", 1)[0]
        return Issue(
            ref=Ref(self.name, ident),
            key=key,
            url=f"{self.config.url}/browse/{key}",
            title=summary,
            state=state,
            state_name=status["name"],
            updated_at=updated,
            assignee=assignee.get("displayName") if isinstance(assignee, dict) \
            and isinstance(assignee.get("displayName"), str) else None,
            team=team,
            resolution=resolution_name if isinstance(resolution_name, str) else None,
            public=False,
        )

    def link_patterns(self) -> list[str]:
        keys = "|".join(re.escape(p) for p in self.config.projects)
        issue_key = rf"(?:{keys})-[1-9][0-9]*"
        return [
            rf"{re.escape(self.config.url)}/browse/(?P<ref>{issue_key})(?![0-9])",
            rf"(?<![A-Za-z0-9_/-])(?P<ref>{issue_key})(?![0-9A-Za-z_-])",
        ]

    # -- writes -------------------------------------------------------------------

    def add_comment(self, issue_id: str, body: str, key: str) -> WriteResult:
        payload = {"body": to_adf(body), "properties": [{"key": PROPERTY_KEY, "value": {"key": key}}]}
        result = self.http.request_json("POST", f"{API}/issue/{_path(issue_id, self.name)}/comment", json=payload,
                                        endpoint=f"POST {API}/issue/{{issueIdOrKey}}/comment")
        comment = expect_dict(self.name, result, "POST /comment", record_id=issue_id)
        when = _parse_instant(comment.get("updated")) or _parse_instant(comment.get("created"))
        return WriteResult(updated_at=when, id=str(comment["id"]) if comment.get("id") is not None else None)

    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        icon: dict[str, str] = {"title": "Helpdesk ticket"}
        if self.config.ticket_icon_url:
            icon["url16x16"] = self.config.ticket_icon_url
        payload = {
            "globalId": ticket_global_id(url),
            "application": {"type": "syncd", "name": "syncd"},
            "object": {"url": url, "title": title or url, "summary": subtitle, "icon": icon},
        }
        # Posting the same globalId again updates the link: safe to retry.
        result = self.http.request_json("POST", f"{API}/issue/{_path(issue_id, self.name)}/remotelink", json=payload,
                                        idempotent=True, endpoint=f"POST {API}/issue/{{issueIdOrKey}}/remotelink")
        link = expect_dict(self.name, result, "POST /remotelink", record_id=issue_id)
        return WriteResult(id=str(link["id"]) if link.get("id") is not None else None)

    def find_marker(self, issue_id: str, key: str) -> bool:
        start = 0
        while True:
            body = self.http.request_json(
                "GET", f"{API}/issue/{_path(issue_id, self.name)}/comment",
                params={"expand": "properties", "orderBy": "-created", "startAt": start, "maxResults": COMMENT_PAGE},
                endpoint=f"GET {API}/issue/{{issueIdOrKey}}/comment")
            page = expect_dict(self.name, body, "GET /comment", record_id=issue_id)
            comments = page.get("comments")
            if not isinstance(comments, list):
                raise PayloadError(self.name, f"issue {issue_id}: comments is not a list", record_id=issue_id)
            if any(comment_marker(c) == key for c in comments):
                return True
            total = page.get("total")
            start += len(comments)
            if not comments or not isinstance(total, int) or start >= total:
                return False


def ticket_global_id(url: str) -> str:
    """The remote link's globalId for a ticket URL (at most 255 characters)."""
    gid = f"syncd:ticket={url}"
    if len(gid) <= 255:
        return gid
    return "syncd:ticket-sha256=" + hashlib.sha256(url.encode()).hexdigest()


def comment_marker(comment: Any) -> str | None:
    """The idempotency key in a comment's ``syncd`` property, if syncd wrote it."""
    if not isinstance(comment, dict) or not isinstance(comment.get("properties"), list):
        return None
    for prop in comment["properties"]:
        if isinstance(prop, dict) and prop.get("key") == PROPERTY_KEY and isinstance(prop.get("value"), dict):
            value = prop["value"].get("key")
            return value if isinstance(value, str) else None
    return None


def _pair(raw: Any) -> tuple[str, str] | None:
    """(id, updated as a UTC instant) of a raw issue, None without a usable one."""
    if not isinstance(raw, dict) or raw.get("id") is None:
        return None
    fields = raw.get("fields")
    updated = _parse_instant(fields.get("updated")) if isinstance(fields, dict) else None
    return (str(raw["id"]), updated.isoformat()) if updated is not None else None


def _parse_instant(value: Any) -> datetime | None:
    """Jira's "2026-11-21T12:00:00.000+0000" (or ISO 8601) → aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 pushed out of range by its offset
        return None


def _path(ref: str, connector: str = "jira") -> str:
    """An issue id or key as a path segment; NotFound for anything else."""
    if not isinstance(ref, str) or not re.match(r"^(?:[0-9]+|[A-Za-z][A-Za-z0-9_]*-[0-9]+)$", ref):
        raise NotFound(connector, f"{ref!r} is not a Jira issue id or key (like 10042 or ENG-7)")
    return ref.upper()
