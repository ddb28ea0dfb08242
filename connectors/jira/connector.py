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

Writes: comments are ADF (see :mod:`connectors.jira.adf`) and carry the marker as
a comment property ``syncd = {"key": KEY}`` (invisible to people); a ticket
is shown as a remote link whose ``globalId`` comes from the ticket URL, so
posting it again updates the same link instead of adding one.

``find_marker`` reads the issue's comments with ``expand=properties``, newest
first: one request unless the issue has more than 100 comments. Remote links
carry no marker: they are idempotent by ``globalId``, so re-sending one after
a crash is harmless.

Deleted issues: Jira answers 404 "Issue does not exist or you do not have
permission to see it" on the issue's path, for a deleted issue and for one
the account may no longer see alike; on an issue path that answer (and only
that one) is :class:`~syncd.errors.Gone`. :meth:`JiraConnector.presence`
checks 100 linked issues a request with ``POST /issue/bulkfetch``.

The handoff: :meth:`JiraConnector.create_issue` is one ``POST /issue`` whose
issue property ``syncd`` holds the marker; :meth:`JiraConnector.find_created`
finds it again through search and then by key (see there why both);
:meth:`JiraConnector.upsert_comment` keeps one comment per slot, marked by
its ``syncd`` property and edited with ``PUT .../comment/{id}``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
import structlog
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import (
    CheckTargets,
    ConnectorConfig,
    Finding,
    Page,
    Presence,
    Rejected,
    RouteTarget,
    SlotRecord,
    StateName,
    StateRule,
    Tracker,
    WebhookSignature,
    WriteResult,
    require_secret,
    utc_now,
)
from connectors.jira.adf import to_adf, to_text
from syncd.errors import ApiError, ConfigError, Gone, NotFound, PayloadError, TransientError
from syncd.http import HttpClient, RateHeaders, expect_dict
from syncd.records import Issue, IssueRemark, Ref, StateCategory
from syncd.writes import IssueDraft

log = structlog.get_logger("syncd.connectors.jira")

API = "/rest/api/3"
# Only what normalisation reads: Jira's payload grows with every field asked for.
ISSUE_FIELDS = ("summary", "status", "assignee", "updated", "resolution", "project", "issuetype")
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
PROPERTY_KEY = "syncd"
COMMENT_PAGE = 100
CREATEMETA_PAGE = 200  # the most createmeta returns per page
# How long after a change syncd trusts that search shows it (index lag and
# clock skew between syncd and the site, with room to spare).
SETTLED = timedelta(minutes=5)
# find_created: how many of a project's newest issues it reads from search,
# then how many keys past the highest it reads directly, and after how many
# keys in a row that are not there (deleted issues leave gaps) it stops.
FIND_SCAN = 300
FIND_PROBE_MAX = 25
FIND_PROBE_MISSES = 3
# The most issues the cursor remembers as holding no comment of syncd's ("quiet"): the
# most recently read are kept, an older one's first slot comment looks first, as before.
QUIET_MAX = 2_000
# The existence check: POST /issue/bulkfetch reads up to 100 issues by id.
PRESENCE_BATCH = 100
# What Jira answers (404) on an issue path for an issue that was deleted or that
# syncd's account may no longer see. A 404 without it (a wrong base URL, a proxy's
# page, a project) is not taken for a deleted issue.
ISSUE_GONE_TEXT = "issue does not exist"
# Fields that may be missing from a project's create screen: the create is
# sent again without them rather than failing the handoff.
OPTIONAL_CREATE_FIELDS = ("labels", "priority")

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
    projects: list[str] = Field(min_length=1, description='Project keys to follow (e.g. ["ENG", "OPS"]).')
    backfill_days: int = Field(30, ge=0, le=3650, description="How far back the first poll reads.")
    overlap_minutes: int = Field(2, ge=1, le=120, description="How far each poll re-reads before its cursor.")
    page_size: int = Field(100, ge=1, le=5000)
    time_zone: str | None = Field(None, description="The API user's time zone for JQL; None: read it from /myself.")
    cancel_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Duplicate", "Cannot Reproduce"],
        description="Resolutions that mean the issue was cancelled rather than completed.",
    )
    ticket_icon_url: str | None = Field(None, description="16x16 icon shown beside linked tickets.")
    issue_type: str = Field(
        "Bug",
        min_length=1,
        max_length=255,
        description="Issue type of the issues syncd creates (a name every project has).",
    )
    issue_types: dict[str, str] = Field(
        default_factory=dict, description='Per-project issue type overriding issue_type, e.g. {OPS = "Task"}.'
    )
    priorities: dict[str, str] = Field(
        default_factory=dict,
        description='Ticket severity -> Jira priority name for created issues, e.g. {sev1 = "Highest"}; '
        "a severity not listed leaves the project's default priority.",
    )

    @field_validator("projects")
    @classmethod
    def _check_projects(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not _PROJECT_KEY_RE.match(p)]
        if bad:
            raise ValueError(f"not Jira project keys (upper case, like ENG): {', '.join(map(repr, bad))}")
        return value

    @field_validator("issue_types")
    @classmethod
    def _check_issue_types(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [p for p in value if not _PROJECT_KEY_RE.match(p)]
        if bad:
            raise ValueError(f"keys must be Jira project keys (upper case, like ENG): {', '.join(map(repr, bad))}")
        empty = [p for p, t in value.items() if not t.strip()]
        if empty:
            raise ValueError(f"empty issue type for {', '.join(empty)}")
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
        if self.api_token is None and self.api_token_file is None:
            raise ValueError("credentials missing: set email and api_token_file (or api_token), or oauth_token")
        if not self.email:
            raise ValueError("email is required with an API token (Basic auth is email + token)")
        return self


class JiraRule(StateRule):
    """A ``[states.<name>]`` rule for Jira: the status category key and the status name."""

    category: Literal["new", "indeterminate", "done"] | None = None
    status: StateName | None = None


class JiraConnector(Tracker):
    kind: ClassVar[str] = "jira"
    display_name: ClassVar[str] = "Jira"
    # A Jira admin webhook with a secret is signed WebSub style: "sha256=" and the hex HMAC-SHA256 of the body.
    webhook = WebhookSignature("X-Hub-Signature", prefix="sha256=")
    fake: ClassVar[str | None] = "connectors.jira.fake:JiraFake"
    state_rule_model: ClassVar[type[StateRule]] = JiraRule
    team_pattern: ClassVar[tuple[str, str]] = (r"^[A-Z][A-Z0-9_]{1,9}$", 'a Jira project key such as "PLAT"')
    config_model: ClassVar[type[ConnectorConfig]] = JiraConfig
    text_format: ClassVar[str] = "adf"
    presence_batch: ClassVar[int] = PRESENCE_BATCH
    # The issues' comments ride in the search the feed makes already (fields=comment): no extra request.
    comment_feed: ClassVar[bool] = True
    config: JiraConfig

    def __init__(
        self,
        name: str,
        config: JiraConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        kept_slots: tuple[str, ...] = (),
    ):
        self._time_zone: str | None = config.time_zone
        self._account_id: str | None = None
        # (issue, slot) -> the id of syncd's comment holding that slot.
        self._slot_comments: dict[tuple[str, str], str] = {}
        # With kept slots (the handoff's demand comment): the issues the feed read with every
        # comment listed and none by syncd's account, oldest first; kept in the cursor
        # ("quiet") so that a later process knows them too. See _upsert_comment.
        self._quiet: dict[str, None] = {}
        self._quiet_loaded = False
        super().__init__(name, config, sleep=sleep, clock=clock, kept_slots=kept_slots)

    # -- session ----------------------------------------------------------------

    def make_http(self) -> HttpClient:
        c = self.config
        headers = {"Accept": "application/json"}
        auth = None
        if c.oauth_token is not None:
            headers["Authorization"] = f"Bearer {c.oauth_token.get_secret_value()}"
        else:
            token = require_secret(self.name, "api_token", c.api_token, c.api_token_file, "give it the Jira API token")
            auth = requests.auth.HTTPBasicAuth(c.email or "", token.get_secret_value())
        return HttpClient(
            self.name,
            c.url,
            auth=auth,
            headers=headers,
            rate_headers=RateHeaders(remaining="X-RateLimit-Remaining", limit="X-RateLimit-Limit"),
            **self.http_options(),
        )

    # -- reads ------------------------------------------------------------------

    def check(self) -> str:
        me = expect_dict(self.name, self.http.request_json("GET", f"{API}/myself"), "GET /myself")
        if self._time_zone is None and isinstance(me.get("timeZone"), str):
            self._time_zone = me["timeZone"]
        if isinstance(me.get("accountId"), str):
            self._account_id = me["accountId"]
        who = me.get("emailAddress") or me.get("displayName") or me.get("accountId")
        return str(who or "unknown user")

    def check_objects(self, targets: CheckTargets) -> list[Finding]:
        """The followed projects and every route's project exist and this account can
        browse them; a route's project is one the connector follows; where a route
        creates issues, the issue type syncd asks for is one the project offers."""
        key = f"connectors.{self.name}"
        follows = list(self.config.projects)
        named = list(dict.fromkeys([*follows, *(r.team for r in targets.routes if _PROJECT_KEY_RE.match(r.team))]))
        exists = {project: self._project_exists(project) for project in named}
        findings = []
        for project in follows:
            if not exists[project]:
                findings.append(Finding("error", f"{key}.projects", _no_project(project, self.config.url)))
        for project in self.config.issue_types:
            if project not in follows:
                findings.append(
                    Finding(
                        "warning",
                        f"{key}.issue_types.{project}",
                        f"project {project} is not in {key}.projects: this issue type is never used",
                    )
                )
        creating: dict[str, RouteTarget] = {}
        for route in targets.routes:
            if not exists.get(route.team, False):
                findings.append(Finding("error", route.where, _no_project(route.team, self.config.url)))
            elif route.team not in follows:
                findings.append(
                    Finding(
                        "error",
                        route.where,
                        f"project {route.team} is not followed by connector {self.name} "
                        f"({key}.projects = {json.dumps(follows)}): the issues of this route are never synced "
                        f"back; add {route.team} to {key}.projects or route to a followed project",
                    )
                )
            elif route.creates:
                creating.setdefault(route.team, route)
        for project, route in creating.items():
            offered = self._creatable_types(project)
            chosen = self.config.issue_types.get(project, self.config.issue_type)
            if chosen not in offered:
                where = f"{key}.issue_types.{project}" if project in self.config.issue_types else f"{key}.issue_type"
                findings.append(
                    Finding(
                        "error",
                        where,
                        f"project {project} (routes.{route.route} creates issues there) has no issue type "
                        f"{chosen!r} this account can create (it offers: {', '.join(offered) or 'none'}); "
                        "name one of those",
                    )
                )
        return findings

    def _project_exists(self, project: str) -> bool:
        """GET /project/{key}: False when Jira answers 404 (no such project, or not browsable)."""
        response = self.http.request(
            "GET", f"{API}/project/{project}", expect=(404,), endpoint=f"GET {API}/project/{{projectIdOrKey}}"
        )
        return response.status_code != 404

    def _creatable_types(self, project: str) -> list[str]:
        """The issue types this account can create in ``project`` (createmeta, every page)."""
        names: list[str] = []
        start = 0
        while True:
            body = expect_dict(
                self.name,
                self.http.request_json(
                    "GET",
                    f"{API}/issue/createmeta/{project}/issuetypes",
                    params={"startAt": start, "maxResults": CREATEMETA_PAGE},
                    endpoint=f"GET {API}/issue/createmeta/{{projectIdOrKey}}/issuetypes",
                ),
                f"GET /issue/createmeta/{project}/issuetypes",
            )
            types = body.get("issueTypes")
            if not isinstance(types, list):
                raise PayloadError(self.name, f"createmeta of {project}: no issueTypes list", payload=body)
            names += [t["name"] for t in types if isinstance(t, dict) and isinstance(t.get("name"), str)]
            start += len(types)
            total = body.get("total")
            if not types or not isinstance(total, int) or start >= total:
                return names

    def user_time_zone(self) -> ZoneInfo:
        """The zone JQL dates are read in: configured, or the user's from /myself."""
        if self._time_zone is None:
            self.check()
        try:
            return ZoneInfo(self._time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise PayloadError(
                self.name, f"GET /myself: unknown timeZone {self._time_zone!r}; set time_zone in connectors.{self.name}"
            ) from None

    def poll(self, cursor: str | None) -> Iterator[Page]:
        state = self._load_cursor(cursor)
        started = self.clock()
        if state.get("tz") and self._time_zone is None:
            self._time_zone = state["tz"]
        if self.kept_slots and not self._quiet_loaded:
            self._quiet_loaded = True  # from then on this process's own reads are the later word
            quiet = state.get("quiet")  # a damaged list is read as none: those issues look first
            for ident in quiet if isinstance(quiet, list) else ():
                if isinstance(ident, str) and ident.isdigit():
                    self._quiet.setdefault(ident, None)
        tz = self.user_time_zone()
        since = _parse_instant(state.get("since")) or self.clock() - timedelta(days=self.config.backfill_days)
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
            remarks: list[IssueRemark] = []
            comment_sets: dict[str, frozenset[str]] = {}
            for raw in issues:
                self._note_quiet(raw)
                pair = _pair(raw)
                if pair is not None and (pair in seen or pair in delivered):
                    continue
                if self.read_comments:
                    remarks += self._remarks(raw, comment_sets)
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
                "since": since.isoformat(),
                "seen": sorted(map(list, seen)),
                "tz": str(tz.key),
            }
            if not done:
                next_state.update({"from": jql_from, "token": token})
            if self.kept_slots:
                next_state["quiet"] = list(self._quiet)
            yield Page(
                records,
                json.dumps(next_state, sort_keys=True),
                done,
                rejected,
                remarks=remarks,
                comment_sets=comment_sets,
            )
            if done:
                return

    def jql_lower_bound(self, since: datetime, tz: ZoneInfo) -> str:
        """The JQL ``updated >=`` bound for ``since``: its minute, less the overlap.

        Where a wall time occurs twice (the hour repeated when clocks go
        back), Jira may read it as the later instant; step back until both
        readings are at or before the bound so nothing is skipped.
        """
        # Subtract in UTC: the same arithmetic on the local time lands in the hour
        # that does not exist when clocks go forward, which Jira reads an hour late.
        back = since.astimezone(timezone.utc) - timedelta(minutes=self.config.overlap_minutes)
        bound = back.astimezone(tz).replace(second=0, microsecond=0)
        for _ in range(4):
            wall = bound.replace(tzinfo=None)
            latest = max(
                wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc),
                wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc),
            )
            if latest <= bound.astimezone(timezone.utc):
                break
            bound = (bound.astimezone(timezone.utc) - timedelta(hours=1)).astimezone(tz)
        return bound.strftime(JQL_TIME_FORMAT)

    def jql(self, lower_bound: str) -> str:
        projects = ", ".join(f'"{p}"' for p in self.config.projects)
        return f'project in ({projects}) AND updated >= "{lower_bound}" ORDER BY updated ASC'

    def _remarks(self, raw: Any, comment_sets: dict[str, frozenset[str]]) -> list[IssueRemark]:
        """The comments of an issue the search returned (its ``comment`` field), for the conversation mirror.

        Restricted ones (``visibility``: a group or a role) are marked private; an app's
        (``accountType`` "app") a bot's. syncd's own carry their marker as a comment
        property, which the search does not return: they are known by syncd's account."""
        fields = raw.get("fields") if isinstance(raw, dict) else None
        block = fields.get("comment") if isinstance(fields, dict) else None
        listed = block.get("comments") if isinstance(block, dict) else None
        if not isinstance(block, dict) or not isinstance(listed, list):
            return []
        if block.get("total") == len(listed) and isinstance(raw, dict) and raw.get("id") is not None:
            # Every comment is listed: one syncd mirrored and no longer here was deleted.
            comment_sets[str(raw["id"])] = frozenset(str(c.get("id")) for c in listed if isinstance(c, dict))
        out = []
        for comment in listed:
            try:
                created, updated = _parse_instant(comment["created"]), _parse_instant(comment["updated"])
                if created is None or updated is None:
                    raise ValueError("created or updated")
                author = comment.get("author") if isinstance(comment.get("author"), dict) else {}
                out.append(
                    IssueRemark(
                        id=str(comment["id"]),
                        issue_key=str(raw.get("key") or ""),
                        issue_id=str(raw["id"]),
                        body=to_text(comment.get("body")),
                        created_at=created,
                        updated_at=updated,
                        author_id=str(author.get("accountId") or "") or None,
                        author_name=str(author.get("displayName") or "") or None,
                        url=f"{self.config.url}/browse/{raw.get('key') or raw['id']}?focusedCommentId={comment['id']}",
                        private=bool(comment.get("visibility")),
                        bot=author.get("accountType") == "app",
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                log.warning("skipping a malformed comment in the search's comment field", connector=self.name)
        return out

    def own_accounts(self) -> tuple[str, ...]:
        return (self._account_id,) if self._account_id else ()

    def _note_quiet(self, raw: Any) -> None:
        """What the search's comment field says of syncd's comments on an issue: none at all
        (every comment listed, none by syncd's account: the issue is "quiet"), or maybe some.
        Where this process has not read who syncd is (the user's time zone came from the
        cursor, so /myself was not asked), only an issue with no comment at all is quiet:
        the feed asks nothing more for it."""
        if not self.kept_slots or not isinstance(raw, dict) or not str(raw.get("id") or "").isdigit():
            return
        ident = str(raw["id"])
        self._quiet.pop(ident, None)
        fields = raw.get("fields")
        block = fields.get("comment") if isinstance(fields, dict) else None
        if not isinstance(block, dict):
            return  # not read: nothing is known
        listed = block.get("comments")
        if not isinstance(listed, list) or block.get("total") != len(listed):
            return  # not all read: nothing is known
        for comment in listed:
            author = comment.get("author") if isinstance(comment, dict) else None
            if self._account_id is None or not isinstance(author, dict) or author.get("accountId") == self._account_id:
                return
        self._quiet[ident] = None
        while len(self._quiet) > QUIET_MAX:
            del self._quiet[next(iter(self._quiet))]

    def _search(self, jql_from: str, token: str | None) -> dict:
        if self.read_comments and self._account_id is None:
            self._own_account()  # syncd's own comments are known by its account (GET /myself, once)
        reads_comments = self.read_comments or bool(self.kept_slots)
        payload: dict[str, Any] = {
            "jql": self.jql(jql_from),
            "fields": list(ISSUE_FIELDS) + (["comment"] if reads_comments else []),
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
            raise ConfigError(
                [f"connectors.{self.name}: stored cursor is not JSON; reset it with a backfill of this connector"]
            ) from None
        if not isinstance(state, dict):
            raise ConfigError(
                [
                    f"connectors.{self.name}: stored cursor is not a JSON object; "
                    "reset it with a backfill of this connector"
                ]
            )
        return state

    def get_issue(self, ref: str) -> Issue:
        with self._issue_gone(ref):
            body = self.http.request_json(
                "GET",
                f"{API}/issue/{_path(ref, self.name)}",
                params={"fields": ",".join(ISSUE_FIELDS)},
                endpoint=f"GET {API}/issue/{{issueIdOrKey}}",
            )
        return self.normalise(expect_dict(self.name, body, f"GET /issue/{ref}", record_id=ref))

    @contextmanager
    def _issue_gone(self, ref: str) -> Iterator[None]:
        """Jira's 404 "Issue does not exist or you do not have permission to see it"
        on an issue's own path → :class:`Gone` (deleted, or hidden from syncd's account)."""
        try:
            yield
        except NotFound as exc:
            if exc.status == 404 and ISSUE_GONE_TEXT in str(exc).lower():
                raise Gone(
                    self.name,
                    f"issue {ref} is deleted, or no longer visible to this account (Jira answered 404: {exc})",
                    status=404,
                ) from None
            raise

    def presence(self, issue_ids: list[str], validators: dict[str, str]) -> Presence:
        """One ``POST /issue/bulkfetch`` per 100 ids. An issue deleted or hidden from
        syncd's account is simply absent from ``issues``; ``issueErrors`` lists those
        Jira could not read this time (neither found nor gone: checked again later).
        (``id in (...)`` through search would fail the whole batch with a 400 for one
        deleted id, and search lags behind.)"""
        out = Presence()
        for start in range(0, len(issue_ids), PRESENCE_BATCH):
            chunk = issue_ids[start : start + PRESENCE_BATCH]
            body = expect_dict(
                self.name,
                self.http.request_json(
                    "POST",
                    f"{API}/issue/bulkfetch",
                    json={"issueIdsOrKeys": chunk, "fields": list(ISSUE_FIELDS)},
                    idempotent=True,
                ),
                "POST /issue/bulkfetch",
            )
            out.requests += 1
            issues, errors = body.get("issues"), body.get("issueErrors") or []
            if not isinstance(issues, list) or not isinstance(errors, list):
                raise PayloadError(
                    self.name, "POST /issue/bulkfetch: 'issues' or 'issueErrors' is not a list", payload=body
                )
            for raw in issues:
                try:
                    issue = self.normalise(raw)
                except PayloadError:
                    continue  # unreadable now: not a deletion; checked again later
                out.found[issue.ref.id] = issue
            retry = {str(e.get("id")) for e in errors if isinstance(e, dict)}
            for ident in chunk:
                if ident not in out.found and ident not in retry:
                    out.gone[ident] = "Jira's bulk fetch no longer returns it (deleted, or not visible to this account)"
        return out

    def follows(self, issue: Issue) -> bool:
        return issue.team in self.config.projects

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
        team = (
            project.get("key")
            if isinstance(project, dict) and isinstance(project.get("key"), str)
            else key.rsplit("-", 1)[0]
        )
        return Issue(
            ref=Ref(self.name, ident),
            key=key,
            url=f"{self.config.url}/browse/{key}",
            title=summary,
            state=state,
            state_name=status["name"],
            native={"category": category_key, "status": status["name"]},
            updated_at=updated,
            assignee=assignee.get("displayName")
            if isinstance(assignee, dict) and isinstance(assignee.get("displayName"), str)
            else None,
            team=team,
            resolution=resolution_name if isinstance(resolution_name, str) else None,
            public=False,
        )

    def native_of_stored(self, issue: Issue) -> dict[str, str | None]:
        # The status category is the one the category was derived from (a done
        # issue counted as cancelled by its resolution is still category done).
        category = {
            StateCategory.STARTED: "indeterminate",
            StateCategory.COMPLETED: "done",
            StateCategory.CANCELED: "done",
        }.get(issue.state, "new")
        return {"category": category, "status": issue.state_name}

    def key_prefixes(self) -> frozenset[str] | None:
        """The followed project keys."""
        return frozenset(p.upper() for p in self.config.projects)

    def link_patterns(self) -> list[str]:
        keys = "|".join(re.escape(p) for p in self.config.projects)
        issue_key = rf"(?:{keys})-[1-9][0-9]*"
        return [
            rf"{re.escape(self.config.url)}/browse/(?P<ref>{issue_key})(?![0-9])",
            rf"(?<![A-Za-z0-9_/-])(?P<ref>{issue_key})(?![0-9A-Za-z_-])",
        ]

    # -- writes -------------------------------------------------------------------

    def add_comment(self, issue_id: str, body: str, key: str, *, customer_data: bool = False) -> WriteResult:
        """``customer_data``: the body names a customer; a team or project here is never public."""
        payload = {"body": to_adf(body), "properties": [{"key": PROPERTY_KEY, "value": {"key": key}}]}
        with self._issue_gone(issue_id):
            result = self.http.request_json(
                "POST",
                f"{API}/issue/{_path(issue_id, self.name)}/comment",
                json=payload,
                endpoint=f"POST {API}/issue/{{issueIdOrKey}}/comment",
            )
        return _comment_result(expect_dict(self.name, result, "POST /comment", record_id=issue_id))

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
        with self._issue_gone(issue_id):
            result = self.http.request_json(
                "POST",
                f"{API}/issue/{_path(issue_id, self.name)}/remotelink",
                json=payload,
                idempotent=True,
                endpoint=f"POST {API}/issue/{{issueIdOrKey}}/remotelink",
            )
        link = expect_dict(self.name, result, "POST /remotelink", record_id=issue_id)
        return WriteResult(id=str(link["id"]) if link.get("id") is not None else None)

    def find_marker(self, issue_id: str, key: str) -> bool:
        with self._issue_gone(issue_id):
            return any(comment_marker(c) == key for c in self._comments(_path(issue_id, self.name), "-created"))

    def _comments(self, path: str, order: str) -> Iterator[dict]:
        """The issue's comments with their properties, page by page, in ``order``."""
        start = 0
        while True:
            body = self.http.request_json(
                "GET",
                f"{API}/issue/{path}/comment",
                params={"expand": "properties", "orderBy": order, "startAt": start, "maxResults": COMMENT_PAGE},
                endpoint=f"GET {API}/issue/{{issueIdOrKey}}/comment",
            )
            page = expect_dict(self.name, body, "GET /comment", record_id=path)
            comments = page.get("comments")
            if not isinstance(comments, list):
                raise PayloadError(self.name, f"issue {path}: comments is not a list", record_id=path)
            yield from comments
            total = page.get("total")
            start += len(comments)
            if not comments or not isinstance(total, int) or start >= total:
                return

    # -- handoff: issues syncd creates, comments kept current in place ----------------

    def is_private(self, team: str) -> bool:
        """Always True: a Jira project lives on the organisation's own site."""
        return True

    def create_issue(self, team: str, draft: IssueDraft, key: str) -> WriteResult:
        """Create the handoff issue in project ``team`` with one ``POST /issue``.

        The marker travels as the issue property ``syncd = {"key": KEY}``,
        set by the same request, so the issue never exists without it.
        Labels are sanitised (Jira labels have no spaces); a project whose
        create screen lacks labels or priority answers 400 having created
        nothing, and the create is sent again without them. The create
        answer has no timestamp: ``updated_at`` comes from one small read
        afterwards, and is None if that read fails (the issue exists; the
        write must not be repeated for it).
        """
        project = _project_key(team, self.name)
        fields: dict[str, Any] = {
            "project": {"key": project},
            "summary": _summary(draft.title),
            "issuetype": {"name": self.config.issue_types.get(project, self.config.issue_type)},
            "description": to_adf(draft.body),
        }
        labels = jira_labels(draft.labels)
        if labels:
            fields["labels"] = labels
        priority = self.config.priorities.get(draft.priority) if draft.priority else None
        if priority:
            fields["priority"] = {"name": priority}
        while True:
            response = self.http.request(
                "POST",
                f"{API}/issue",
                json={"fields": fields, "properties": [{"key": PROPERTY_KEY, "value": {"key": key}}]},
                idempotent=False,
                expect=(400,),
                endpoint=f"POST {API}/issue",
            )
            if response.status_code != 400:
                break
            errors = _field_errors(response)
            dropped = [f for f in OPTIONAL_CREATE_FIELDS if f in errors and f in fields]
            if not dropped or set(errors) - set(dropped):
                raise self._create_refused(project, errors, response)
            for name in dropped:
                log.warning(
                    "field refused by the project's create screen; creating without it",
                    connector=self.name,
                    project=project,
                    field=name,
                    reason=errors[name][:200],
                )
                del fields[name]
        try:
            created = response.json()
        except ValueError:
            raise TransientError(self.name, "POST /issue: response body is not JSON", maybe_applied=True) from None
        if not isinstance(created, dict) or not re.fullmatch(r"[0-9]+", str(created.get("id", ""))):
            raise PayloadError(self.name, f"POST /issue in {project}: the answer names no issue id", payload=created)
        ident = str(created["id"])
        return WriteResult(updated_at=self._updated_at(ident), id=ident)

    def _create_refused(self, project: str, errors: dict[str, str], response: requests.Response) -> ApiError:
        """One line saying why Jira would not create the issue and what to change."""
        if "project" in errors:
            return NotFound(
                self.name,
                f"project {project!r} cannot take new issues ({errors['project']}); "
                f"check the route's team and that the API user may create issues there",
                status=400,
            )
        if "issuetype" in errors:
            chosen = self.config.issue_types.get(project, self.config.issue_type)
            where = f"issue_types.{project}" if project in self.config.issue_types else "issue_type"
            return ApiError(
                self.name,
                f"project {project} has no issue type {chosen!r} "
                f"({errors['issuetype']}); set connectors.{self.name}.{where} to one it has",
                status=400,
            )
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) or _messages(response)
        return ApiError(self.name, f"POST /issue in {project} refused: {detail[:300]}", status=400)

    def _updated_at(self, ident: str) -> datetime | None:
        try:
            body = self.http.request_json(
                "GET",
                f"{API}/issue/{ident}",
                params={"fields": "updated"},
                endpoint=f"GET {API}/issue/{{issueIdOrKey}}",
            )
        except ApiError as exc:
            log.warning("created issue: could not read its timestamp", connector=self.name, issue=ident, error=str(exc))
            return None
        fields = body.get("fields") if isinstance(body, dict) else None
        return _parse_instant(fields.get("updated")) if isinstance(fields, dict) else None

    def find_created(self, team: str, key: str) -> str | None:
        """The id of the issue created in ``team`` with ``key``, if there is one.

        Jira's search is eventually consistent: an issue created a moment
        ago (the case after a crash) may not be in it yet, and JQL cannot
        match an issue property that no app has indexed. So this reads in
        two steps. (1) Search the project's newest issues (``ORDER BY
        created DESC``, the ``syncd`` property returned with each), up to
        FIND_SCAN of them. (2) Read directly by key the issues numbered
        above the highest key search returned: issue numbers are given out
        in order within a project and reading an issue by key is consistent
        at once, so an issue search has not indexed yet is still found.
        Step 2 stops after FIND_PROBE_MISSES keys in a row that are not
        there (deleted issues leave gaps) or FIND_PROBE_MAX keys.

        Limits: an issue among more than FIND_SCAN newer ones that search
        already shows is not looked at, nor one moved out of the project
        after it was indexed, nor one behind more deleted keys in a row than
        FIND_PROBE_MISSES. Recovery follows a crash soon after the create,
        so these are far outside the window it searches.
        """
        project = _project_key(team, self.name)
        highest, read, token = 0, 0, None
        while read < FIND_SCAN:
            body = self._search_project(project, token)
            issues = body.get("issues")
            if not isinstance(issues, list):
                raise PayloadError(self.name, "POST /search/jql: 'issues' is not a list", payload=body)
            for raw in issues:
                if issue_marker(raw) == key:
                    return str(raw["id"])
                highest = max(highest, _key_number(raw, project))
            read += len(issues)
            token = body.get("nextPageToken") or None
            if not issues or token is None or body.get("isLast"):
                break
        misses, number = 0, highest
        for _ in range(FIND_PROBE_MAX):
            if misses >= FIND_PROBE_MISSES:
                break
            number += 1
            raw = self._read_by_key(f"{project}-{number}")
            if raw is None:
                misses += 1
                continue
            misses = 0
            if issue_marker(raw) == key:
                return str(raw["id"])
        return None

    def _search_project(self, project: str, token: str | None) -> dict:
        payload: dict[str, Any] = {
            "jql": f'project = "{project}" ORDER BY created DESC',
            "fields": ["created"],
            "properties": [PROPERTY_KEY],
            "maxResults": 100,
        }
        if token:
            payload["nextPageToken"] = token
        try:
            body = self.http.request_json("POST", f"{API}/search/jql", json=payload, idempotent=True)
        except ApiError as exc:
            if exc.status == 400:
                raise NotFound(
                    self.name,
                    f"project {project!r} is not on this Jira site or not visible to "
                    "the API user; check the route's team",
                    status=400,
                ) from None
            raise
        return expect_dict(self.name, body, "POST /search/jql")

    def _read_by_key(self, issue_key: str) -> dict | None:
        response = self.http.request(
            "GET",
            f"{API}/issue/{issue_key}",
            expect=(404,),
            params={"fields": "created", "properties": PROPERTY_KEY},
            endpoint=f"GET {API}/issue/{{issueIdOrKey}}",
        )
        if response.status_code == 404:
            return None
        try:
            raw = response.json()
        except ValueError:
            raise PayloadError(
                self.name, f"GET /issue/{issue_key}: response body is not JSON", record_id=issue_key
            ) from None
        return expect_dict(self.name, raw, f"GET /issue/{issue_key}", record_id=issue_key)

    def upsert_comment(
        self,
        issue_id: str,
        body: str,
        key: str,
        slot: str,
        *,
        customer_data: bool = False,
        known: SlotRecord | None = None,
    ) -> WriteResult:
        with self._issue_gone(issue_id):
            return self._upsert_comment(issue_id, body, key, slot, known)

    def _upsert_comment(
        self, issue_id: str, body: str, key: str, slot: str, known: SlotRecord | None = None
    ) -> WriteResult:
        """Keep syncd's one comment for ``slot`` on the issue current.

        The comment carries the property ``syncd = {"key", "slot",
        "digest"}``: the slot finds it, the key is the latest write's (what
        :meth:`find_marker` looks for), the digest is of the Markdown it was
        written from. It is left alone when both the digest and its text
        match (Jira may reshape ADF it stores, so the text is compared, and a
        person's edit of the text is put right). Only comments by syncd's
        own account hold a slot. The comment's id is remembered, and checked
        with one read next time instead of a scan of the thread. Where the
        store names the comment its last delivered write answered with
        (``known.comment_id``) and this process remembers none, that comment
        is edited with no read first (a 404: someone deleted it, so the
        thread is scanned and the comment made again).

        A write with nothing to change sends nothing, so the property keeps
        the earlier key: after a crash, delivery then finds no marker of the
        new key and calls this again, which again sends nothing. A Jira
        project is never public (:meth:`is_private`), so ``customer_data``
        is always allowed here.
        """
        path = _path(issue_id, self.name)
        doc = to_adf(body)
        digest = hashlib.sha256(body.encode()).hexdigest()[:32]
        payload = {
            "body": doc,
            "properties": [{"key": PROPERTY_KEY, "value": {"key": key, "slot": slot, "digest": digest}}],
        }
        stored = known.comment_id if known is not None else None
        if (
            known is not None
            and not known.written
            and slot in self.kept_slots
            and (path, slot) not in self._slot_comments
            and path in self._quiet
        ):
            # Two words that there is no comment to find: the feed read every comment of the
            # issue and none was syncd's (in this process, or kept in the cursor: any comment
            # since would have changed the issue's "updated" and so been read again), and the
            # store holds no earlier write of the slot (one being sent, or sent by another
            # process, says written). Created with no look.
            result = self.http.request_json(
                "POST",
                f"{API}/issue/{path}/comment",
                json=payload,
                endpoint=f"POST {API}/issue/{{issueIdOrKey}}/comment",
            )
            self._quiet.pop(path, None)
            written = _comment_result(expect_dict(self.name, result, "comment write", record_id=issue_id))
            if written.id:
                self._slot_comments[(path, slot)] = written.id
            return written
        if stored and (path, slot) not in self._slot_comments:
            response = self.http.request(
                "PUT",
                f"{API}/issue/{path}/comment/{stored}",
                json=payload,
                idempotent=True,
                expect=(404,),
                endpoint=f"PUT {API}/issue/{{issueIdOrKey}}/comment/{{id}}",
            )
            if response.status_code != 404:
                try:
                    raw = response.json()
                except ValueError:
                    raise PayloadError(
                        self.name, "comment write: response body is not JSON", record_id=issue_id
                    ) from None
                written = _comment_result(expect_dict(self.name, raw, "comment write", record_id=issue_id))
                if written.id:
                    self._slot_comments[(path, slot)] = written.id
                return written
        found = self._slot_comment(path, slot)
        self._quiet.pop(path, None)
        if found is None:
            result = self.http.request_json(
                "POST",
                f"{API}/issue/{path}/comment",
                json=payload,
                endpoint=f"POST {API}/issue/{{issueIdOrKey}}/comment",
            )
        else:
            value = _syncd_property(found) or {}
            if value.get("digest") == digest and to_text(found.get("body")) == to_text(doc):
                return _comment_result(found)
            # The same body put twice is the same comment: safe to retry.
            result = self.http.request_json(
                "PUT",
                f"{API}/issue/{path}/comment/{found['id']}",
                json=payload,
                idempotent=True,
                endpoint=f"PUT {API}/issue/{{issueIdOrKey}}/comment/{{id}}",
            )
        comment = expect_dict(self.name, result, "comment write", record_id=issue_id)
        written = _comment_result(comment)
        if written.id:
            self._slot_comments[(path, slot)] = written.id
        return written

    def _slot_comment(self, path: str, slot: str) -> dict | None:
        """syncd's comment holding ``slot`` on the issue (with its properties), or None."""
        me = self._own_account()
        remembered = self._slot_comments.get((path, slot))
        if remembered:
            response = self.http.request(
                "GET",
                f"{API}/issue/{path}/comment/{remembered}",
                params={"expand": "properties"},
                expect=(404,),
                endpoint=f"GET {API}/issue/{{issueIdOrKey}}/comment/{{id}}",
            )
            if response.status_code != 404:
                try:
                    comment = response.json()
                except ValueError:
                    comment = None
                if _holds_slot(comment, slot, me):
                    return comment
            del self._slot_comments[(path, slot)]
        for comment in self._comments(path, "created"):
            if _holds_slot(comment, slot, me):
                self._slot_comments[(path, slot)] = str(comment["id"])
                return comment
        return None

    def _own_account(self) -> str | None:
        """syncd's own accountId (read once per process from /myself)."""
        if self._account_id is None:
            self.check()
        return self._account_id


def jira_labels(labels: tuple[str, ...] | list[str]) -> list[str]:
    """Labels as Jira takes them: no whitespace (runs become "-"), at most
    255 characters, no empties, each once in the order given."""
    out: list[str] = []
    for label in labels:
        clean = re.sub(r"\s+", "-", str(label).strip())[:255]
        if clean and clean not in out:
            out.append(clean)
    return out


def issue_marker(raw: Any) -> str | None:
    """The idempotency key in an issue's ``syncd`` property (as search and GET /issue return it)."""
    props = raw.get("properties") if isinstance(raw, dict) and raw.get("id") is not None else None
    value = props.get(PROPERTY_KEY) if isinstance(props, dict) else None
    key = value.get("key") if isinstance(value, dict) else None
    return key if isinstance(key, str) else None


def _syncd_property(comment: Any) -> dict | None:
    if not isinstance(comment, dict) or not isinstance(comment.get("properties"), list):
        return None
    for prop in comment["properties"]:
        if isinstance(prop, dict) and prop.get("key") == PROPERTY_KEY and isinstance(prop.get("value"), dict):
            return prop["value"]
    return None


def _holds_slot(comment: Any, slot: str, account_id: str | None) -> bool:
    value = _syncd_property(comment)
    if value is None or value.get("slot") != slot or comment.get("id") is None:
        return False
    author = comment.get("author")
    author_id = author.get("accountId") if isinstance(author, dict) else None
    return account_id is None or author_id is None or author_id == account_id


def _comment_result(comment: dict) -> WriteResult:
    when = _parse_instant(comment.get("updated")) or _parse_instant(comment.get("created"))
    return WriteResult(updated_at=when, id=str(comment["id"]) if comment.get("id") is not None else None)


def _no_project(project: str, url: str) -> str:
    return (
        f"no Jira project {project} at {url} that this account can browse; "
        "check the key (Jira > Projects) and the account's Browse projects permission"
    )


def _project_key(team: str, connector: str) -> str:
    if not isinstance(team, str) or not _PROJECT_KEY_RE.match(team):
        raise NotFound(
            connector,
            f"team {team!r} is not a Jira project key (upper case, like ENG); "
            "set the route's team to the project's key",
        )
    return team


def _summary(title: str) -> str:
    """Jira's summary: one line of at most 255 characters."""
    line = " ".join(title.split())
    return line if len(line) <= 255 else line[:254] + "…"


def _key_number(raw: Any, project: str) -> int:
    key = raw.get("key") if isinstance(raw, dict) else None
    if isinstance(key, str) and key.startswith(project + "-") and key[len(project) + 1 :].isdigit():
        return int(key[len(project) + 1 :])
    return 0


def _field_errors(response: requests.Response) -> dict[str, str]:
    """Jira's 400 body ``{"errors": {field: message}}`` as a dict (empty when absent)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}


def _messages(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    messages = body.get("errorMessages") if isinstance(body, dict) else None
    if isinstance(messages, list) and messages:
        return "; ".join(str(m) for m in messages)
    return f"HTTP {response.status_code}"


def ticket_global_id(url: str) -> str:
    """The remote link's globalId for a ticket URL (at most 255 characters)."""
    gid = f"syncd:ticket={url}"
    if len(gid) <= 255:
        return gid
    return "syncd:ticket-sha256=" + hashlib.sha256(url.encode()).hexdigest()


def comment_marker(comment: Any) -> str | None:
    """The idempotency key in a comment's ``syncd`` property, if syncd wrote it."""
    value = _syncd_property(comment)
    key = value.get("key") if value is not None else None
    return key if isinstance(key, str) else None


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
