"""GitHub Issues (REST) as a tracker.

Feed. Per repository, ``GET /repos/{o}/{r}/issues?state=all&since=…&sort=updated
&direction=asc&per_page=100``. The first page carries ``If-None-Match`` with the
ETag of the last identical request, so an idle poll is a 304 (free against the
rate limit). Later pages follow the ``Link: rel="next"`` URL, with one
refinement: page-number paging over an ``updated`` sort shifts when an issue
already read is updated mid-read (everything after it moves up one place and
one issue would be skipped for good). So when a page spans more than one second,
the next page is asked for by ``since`` = the last ``updated_at`` read minus one
second instead (keyset paging, same cost); only a page whose issues all share
one second follows the Link URL. Boundary issues are read twice and
de-duplicated by (id, updated_at). ``since`` becomes the high-water mark minus
``OVERLAP`` only once the last page is read, and only when the read took more
than one page: a listing that fits one page keeps its ``since``, so its ETag
stays the next poll's validator (moving ``since`` changes the URL, and the
first answer for a new URL is a full 200, not a free 304).

The cursor is JSON: ``{"v": 1, "repos": {"owner/repo": {"since", "etag",
"next", "hwm", "public", "vis_etag", "vis_at", "quiet"}}}``; ``quiet`` holds the
numbers of the issues that the listing's ETag covers and that have no comment, so
that a 304 still tells a new process which issues hold no comment of syncd's.

Identity. ``Issue.ref.id`` is GitHub's numeric issue id, stable across
transfers; ``Issue.key`` is ``owner/repo#n``. REST has no get-issue-by-id, so
every method taking an issue accepts the key (or the issue's URL) — the engine
passes the key it last knew — and also a bare id: one this process has seen
in a poll or a read, else one that ``key_lookup`` (a callable the engine
sets, answering from its snapshots) can name. A transferred issue answers
301; reads follow it and return the Issue under its new key, writes
re-resolve and are sent to the new place once.
A deleted issue answers 410, and an issue of a followed repository that the
token may no longer see answers 404: both are :class:`~syncd.errors.Gone`
(a 404 elsewhere stays :class:`~syncd.errors.NotFound`); final, never
retried in a loop. :meth:`GitHubConnector.presence` checks linked issues with
conditional GETs (REST has no batch read by id).

State. open → UNSTARTED, or STARTED when someone is assigned (GitHub has no
"in progress" state; an assignee is the closest signal that work has an owner
and began; reopened issues follow the same rule); closed + completed (or no
reason: issues closed before state_reason existed) → COMPLETED; closed +
not_planned or duplicate → CANCELED.

Public repositories. What syncd writes to a public repository is readable by
anyone. :meth:`GitHubConnector.is_public` says which repositories are (cached
for ``visibility_ttl`` seconds on polls; before a write, a public one for
``write_visibility_ttl`` seconds and a private one not at all: re-validated with a
conditional request). Writes flagged ``customer_data=True``
— and any body holding an e-mail address — are refused there with
:class:`PublicRepositoryRefused`; :meth:`~GitHubConnector.attach_ticket` writes
only an opaque reference and counts there. :meth:`~GitHubConnector.visibility`
reports each repository's visibility as last read; when one turned public the
engine has :meth:`~GitHubConnector.make_opaque` rewrite syncd's texts on each
issue there in place (see docs/privacy.md).

Handoff. :meth:`~GitHubConnector.create_issue` opens an issue in the route's
repository with one POST (its body ends with a hidden ``<!-- syncd:KEY -->``;
labels only those the repository has, from a list read once per process);
:meth:`~GitHubConnector.find_created` finds it again after a crash in syncd's
newest issues of that repository; :meth:`~GitHubConnector.upsert_comment`
keeps one comment per slot ("context", "demand", ...) edited in place.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Literal
from urllib.parse import urlencode, urlsplit

import requests
import structlog
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import (
    CheckTargets,
    CommentPresence,
    ConnectorConfig,
    Finding,
    KeptText,
    OpaqueResult,
    OpaqueRewrite,
    Page,
    Presence,
    Rejected,
    SlotRecord,
    StateRule,
    Tracker,
    WebhookSignature,
    WriteResult,
    find_markers,
    marker_token,
    require_secret,
    utc_now,
)
from syncd.errors import (
    ApiError,
    AuthError,
    ConfigError,
    Conflict,
    Gone,
    NotFound,
    PayloadError,
    SyncdError,
    TransientError,
)
from syncd.http import HttpClient, RateHeaders, RateRule, WriteBudget, expect_dict
from syncd.records import Comment, Issue, IssueRemark, Ref, StateCategory, format_time, parse_time
from syncd.writes import IssueDraft

log = structlog.get_logger("syncd.connectors.github")

API_VERSION = "2022-11-28"
PER_PAGE = 100
OVERLAP = timedelta(seconds=5)
CONTEXT_SLOT = "context"

REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
KEY_RE = re.compile(r"^(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+)#(?P<number>\d+)$")
SLOT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
TICKET_LINE_RE = re.compile(r"^- .*<!-- syncd:t=(?P<hash>[0-9a-f]{12}) -->$", re.M)
TICKETS_BLOCK_RE = re.compile(r"<!-- syncd:tickets -->\n.*?<!-- /syncd:tickets -->\n?", re.S)
KEY_MARKER_RE = re.compile(r"<!-- syncd:[0-9a-f]{20} -->\n?")
# A label asked for but missing from the cached list is looked up again at most this often (seconds).
LABEL_RECHECK = 600.0
TITLE_MAX = 256  # characters GitHub takes in an issue title

# Rate limits, as GitHub's "Rate limits for the REST API" describes them. The
# primary limit answers 403 or 429 with x-ratelimit-remaining 0: wait for
# x-ratelimit-reset. A secondary limit answers 403 or 429 with a message
# naming it ("You have exceeded a secondary rate limit..."), retry-after when
# GitHub gives one, and requests often still remaining: it is not a
# credentials problem. Without retry-after GitHub asks for at least a minute,
# then exponentially longer: 60 s, 120, 240, 480, then 15 minutes each time.
SECONDARY_FIRST_WAIT = 60.0
SECONDARY_LONGEST_WAIT = 900.0
RATE_LIMIT_WORDS = ("rate limit", "abuse detection")


def is_rate_limited(response: requests.Response) -> bool:
    """Whether a 403/429 from GitHub is a rate limit (primary or secondary), not a refusal."""
    if response.status_code not in (403, 429):
        return False
    headers = response.headers
    if headers.get("x-ratelimit-remaining", "").strip() == "0" or "retry-after" in headers:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and any(word in message.lower() for word in RATE_LIMIT_WORDS)


# What GitHub counts as content creation (its secondary limits: 80 a minute, 500 an hour):
# a new comment or a new issue. Edits (PATCH) and reads are not counted.
CONTENT_ENDPOINTS = frozenset({"POST /repos/{o}/{r}/issues/{n}/comments", "POST /repos/{o}/{r}/issues"})


def creates_content(method: str, endpoint: str) -> bool:
    return endpoint in CONTENT_ENDPOINTS


RATE_RULE = RateRule(
    matches=is_rate_limited, unhinted_wait=SECONDARY_FIRST_WAIT, unhinted_longest=SECONDARY_LONGEST_WAIT
)


class GitHubConfig(ConnectorConfig):
    kind: Literal["github"]
    url: str = Field("https://api.github.com", description="API base; GitHub Enterprise Server: https://HOST/api/v3.")
    token: SecretStr | None = Field(None, description="Personal access token or app token (sent as Bearer).")
    token_file: str | None = Field(None, description="A file holding the token.")
    repositories: list[str] = Field(min_length=1, description="Repositories to follow, as owner/name.")
    include_pull_requests: bool = Field(False, description="Treat pull requests as issues too.")
    backfill_days: int = Field(30, ge=0, description="How far back the first poll reads.")
    mutation_interval: float = Field(1.0, ge=0, description="Seconds between mutating requests (GitHub asks ≥ 1).")
    comments_per_minute: int = Field(
        80, ge=1, description="Comments and issues syncd creates a minute at most (GitHub's secondary limit: 80)."
    )
    comments_per_hour: int = Field(
        500, ge=1, description="Comments and issues syncd creates an hour at most (GitHub's secondary limit: 500)."
    )
    write_visibility_ttl: float = Field(
        60,
        ge=0,
        description="Seconds a public repository's visibility, read for a write, is trusted for "
        "the next writes there (0: read before every write). A private repository is read "
        "again before every write, so the customer never reaches one just turned public "
        "(docs/privacy.md).",
    )
    visibility_ttl: float = Field(
        3600,
        ge=0,
        description="Seconds a repository's visibility is trusted before "
        "it is checked again on a poll (bounds how late a "
        "repository turning public is noticed; syncd then "
        "rewrites its texts there, docs/privacy.md).",
    )

    @field_validator("repositories")
    @classmethod
    def _repo_names(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if not REPO_RE.match(r)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not owner/name (e.g. acme/webapp)")
        lowered = [r.lower() for r in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("lists a repository twice")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> "GitHubConfig":
        if self.token is None and self.token_file is None:
            raise ValueError(
                "no credentials: set token (environment variable SYNCD_CONNECTORS__<NAME>__TOKEN) or token_file"
            )
        return self


class PublicRepositoryRefused(Conflict):
    """A write that may carry customer data was aimed at a public repository."""


@dataclass(frozen=True)
class IssueLocation:
    owner: str
    repo: str
    number: int

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"

    @property
    def path(self) -> str:
        return f"repos/{self.owner}/{self.repo}/issues/{self.number}"


@dataclass
class _Visibility:
    public: bool
    etag: str | None
    checked_at: float


@dataclass
class _Labels:
    by_lower: dict[str, str]  # lower-case name -> the repository's spelling
    checked_at: float


def web_root(api_url: str) -> str:
    """The web host for an API base: api.github.com → github.com; GHE drops /api/v3."""
    parts = urlsplit(api_url)
    if parts.netloc.lower() == "api.github.com":
        return "https://github.com"
    path = re.sub(r"/api/v3/?$", "", parts.path.rstrip("/"))
    return f"{parts.scheme}://{parts.netloc}{path}"


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint for an API base: api.github.com/graphql; GHE: https://HOST/api/graphql."""
    base = api_url.rstrip("/")
    return base[: -len("/v3")] + "/graphql" if base.endswith("/api/v3") else base + "/graphql"


# Who last edited comments or issues: REST does not say, GraphQL does (``editor``).
EDITORS_QUERY = (
    "query($ids: [ID!]!) { nodes(ids: $ids) { ... on IssueComment { id editor { login } lastEditedAt } "
    "... on Issue { id editor { login } lastEditedAt } } }"
)


def ticket_hash(url: str) -> str:
    """An opaque, stable reference to a ticket: nothing about it can be read back."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def _without_markers(body: str) -> str:
    """A comment's text without syncd's hidden markers (what a person reads)."""
    return re.sub(r"<!--\s*syncd:[^>]*-->", "", body).strip()


def _quiet_numbers(items: list) -> list[int]:
    """The numbers of the listed issues that have no comment at all (``comments`` 0): kept in
    the cursor with the ETag of the listing, they vouch, when it answers 304, that syncd's
    comment is not there (no scan before its first write)."""
    return sorted(
        item["number"]
        for item in items
        if isinstance(item, dict)
        and item.get("comments") == 0
        and isinstance(item.get("number"), int)
        and not isinstance(item.get("number"), bool)
    )


def next_link(response: requests.Response) -> str | None:
    return (response.links.get("next") or {}).get("url")


def is_pull_request(item: dict) -> bool:
    # Old payloads carry "pull_request" with null URLs on plain issues.
    pr = item.get("pull_request")
    return isinstance(pr, dict) and any(pr.get(k) for k in ("url", "html_url"))


def repo_of(item: dict) -> str:
    """owner/repo of an issue payload, from repository_url (or html_url)."""
    m = re.search(r"/repos/([^/]+)/([^/]+)/?$", item.get("repository_url") or "")
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    m = re.search(r"/([^/]+)/([^/]+)/(?:issues|pull)/\d+$", item.get("html_url") or "")
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    raise KeyError("repository_url")


def state_of(item: dict) -> tuple[StateCategory, str]:
    state = item["state"]
    reason = item.get("state_reason")
    if state == "open":
        name = "Open (reopened)" if reason == "reopened" else "Open"
        return (StateCategory.STARTED if assignee_of(item) else StateCategory.UNSTARTED), name
    if state == "closed":
        if reason in ("not_planned", "duplicate"):
            return StateCategory.CANCELED, f"Closed ({reason.replace('_', ' ')})"
        return StateCategory.COMPLETED, "Closed (completed)" if reason == "completed" else "Closed"
    raise ValueError(f"unknown state {state!r}")


def native_of(item: dict) -> dict[str, str | None]:
    """GitHub's own words for the state: ``state`` and the ``state_reason`` that
    the state name shows (a reason that does not fit the state is left out)."""
    state, reason = item["state"], item.get("state_reason")
    shown = ("reopened",) if state == "open" else ("completed", "not_planned", "duplicate")
    return {"state": state, "reason": reason if reason in shown else None}


def assignee_of(item: dict) -> str | None:
    person = item.get("assignee") or next(iter(item.get("assignees") or []), None)
    login = person.get("login") if isinstance(person, dict) else None
    return login if isinstance(login, str) else None


def _issue_path(method):
    """A 404 on the issue's own path (or its comments) in a followed repository
    means the issue is deleted or hidden from syncd's token: :class:`Gone`, as
    for GitHub's 410. (A 404 elsewhere — a comment, a repository — stays NotFound.)"""

    @functools.wraps(method)
    def wrapper(self: "GitHubConnector", ref: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, ref, *args, **kwargs)
        except NotFound as exc:
            raise self._gone_from_404(ref, exc) from None

    return wrapper


class GitHubRule(StateRule):
    """A ``[states.<name>]`` rule for GitHub: the issue's state and state_reason."""

    state: Literal["open", "closed"] | None = None
    reason: Literal["completed", "not_planned", "duplicate", "reopened"] | None = None


class GitHubConnector(Tracker):
    kind = "github"
    display_name = "GitHub"
    # GitHub signs each webhook with its secret: "sha256=" and the hex HMAC-SHA256 of the body (no time).
    webhook = WebhookSignature("X-Hub-Signature-256", prefix="sha256=")
    fake = "connectors.github.fake:GitHubFake"
    state_rule_model = GitHubRule
    team_pattern = (r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", 'a repository "owner/name"')
    needs_key_lookup = True  # reads an issue by owner/repo#number: the engine sets key_lookup
    text_format = "markdown"
    attachment_format = "markdown"  # the ticket's title goes into the context comment
    reports_visibility = True
    attaches_many = True
    comment_feed = True  # GET /repos/{o}/{r}/issues/comments?since=: one conditional request per repository
    config_model = GitHubConfig
    config: GitHubConfig

    def __init__(
        self,
        name: str,
        config: GitHubConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        kept_slots: tuple[str, ...] = (),
    ):
        super().__init__(name, config, sleep=sleep, clock=clock, kept_slots=kept_slots)
        self._repos = {r.lower(): r for r in config.repositories}
        self._visibility: dict[str, _Visibility] = {}
        self._known: dict[str, IssueLocation] = {}  # stable id -> last location seen
        self._slot_comments: dict[tuple[str, str], int] = {}  # (issue key, slot) -> comment id
        # Issues (key, lower case) the feed read with no comment at all: syncd's own comment
        # is not there, so writing it needs no scan of the issue's comments first.
        self._no_comments: set[str] = set()
        self._labels: dict[str, _Labels] = {}  # lower-case repository -> its labels
        self._login: str | None = None
        # Set by the engine: the key it last stored for an issue id (a snapshot
        # lookup), for ids this process has not read. The connector itself
        # never touches the store.
        self.key_lookup: Callable[[str], str | None] | None = None

    # -- session ----------------------------------------------------------------

    def make_http(self) -> HttpClient:
        c = self.config
        token = require_secret(
            self.name,
            "token",
            c.token,
            c.token_file,
            f"set SYNCD_CONNECTORS__{self.name.upper()}__TOKEN to a GitHub token with issues access",
        )
        return HttpClient(
            self.name,
            c.url,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "Authorization": f"Bearer {token.get_secret_value()}",
            },
            rate_headers=RateHeaders(
                remaining="x-ratelimit-remaining", reset="x-ratelimit-reset", limit="x-ratelimit-limit"
            ),
            mutation_interval=c.mutation_interval,
            rate_rule=RATE_RULE,
            write_budget=WriteBudget(
                ((c.comments_per_minute, 60.0), (c.comments_per_hour, 3600.0)), creates_content, "comments"
            ),
            **self.http_options(),
        )

    # -- check ------------------------------------------------------------------

    def check(self) -> str:
        """``GET /user`` and each repository: who we are, and each repository's visibility."""
        user = self._get_object("user", "GET /user")
        self._login = str(user.get("login") or "")
        seen = []
        for repo in self.config.repositories:
            try:
                public = self.is_public(repo, max_age=0)
            except NotFound:
                raise NotFound(
                    self.name,
                    f"repository {repo} (connectors.{self.name}.repositories) does not exist "
                    "or this token cannot see it; check the name and the token's access",
                    status=404,
                ) from None
            seen.append(f"{repo} {'public' if public else 'private'}")
        return f"{self._login} ({', '.join(seen)})"

    def check_objects(self, targets: CheckTargets) -> list[Finding]:
        """Every route's repository exists and is one this connector follows (the
        followed ones were read by :meth:`check`)."""
        key = f"connectors.{self.name}.repositories"
        findings = []
        for route in targets.routes:
            if route.team.lower() in self._repos:
                continue
            try:
                self.is_public(route.team, max_age=0)
            except NotFound:
                findings.append(
                    Finding(
                        "error",
                        route.where,
                        f"repository {route.team} does not exist on GitHub or this token cannot see it; "
                        "check the name and the token's access",
                    )
                )
                continue
            findings.append(
                Finding(
                    "error",
                    route.where,
                    f"repository {route.team} is not followed by connector {self.name} "
                    f"({key} = {json.dumps(list(self.config.repositories))}): the issues of this route are "
                    f"never synced back; add it to {key} or route to a followed repository",
                )
            )
        return findings

    # -- visibility -------------------------------------------------------------

    def is_public(self, repo: str, *, max_age: float | None = None) -> bool:
        """Whether anyone can read ``repo`` (owner/name).

        Answers from a cache younger than ``max_age`` (default
        ``visibility_ttl``); otherwise asks ``GET /repos/{o}/{r}`` with the
        cached ETag (a 304 costs no rate limit).
        """
        ttl = self.config.visibility_ttl if max_age is None else max_age
        name = repo.lower()
        cached = self._visibility.get(name)
        now = self.clock().timestamp()
        if cached is not None and ttl > 0 and now - cached.checked_at < ttl:
            return cached.public
        headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else None
        response, body = self._get(f"repos/{repo}", "GET /repos/{o}/{r}", headers=headers)
        if response.status_code == 304 and cached is not None:
            cached.checked_at = now
            return cached.public
        body = expect_dict(self.name, body, f"GET /repos/{repo}")
        visibility = body.get("visibility")
        if visibility is not None:
            public = visibility == "public"
        elif isinstance(body.get("private"), bool):
            public = not body["private"]
        else:
            raise PayloadError(
                self.name, f"GET /repos/{repo}: neither visibility nor private in the answer", payload=body
            )
        self._visibility[name] = _Visibility(public, response.headers.get("ETag"), now)
        return public

    # -- feed -------------------------------------------------------------------

    def poll(self, cursor: str | None) -> Iterator[Page]:
        state = self._load_cursor(cursor)
        pending: Page | None = None
        for page in self._pages(state):
            if pending is not None:
                yield pending
            pending = page
        if pending is None:
            pending = Page([], self._dump_cursor(state), done=True)
        pending.done = True
        yield pending

    def _pages(self, state: dict[str, dict]) -> Iterator[Page]:
        for repo in self.config.repositories:
            entry = state.setdefault(repo, {})
            self._refresh_visibility(repo, entry)
            public = entry["public"]
            if not entry.get("since"):
                start = self.clock() - timedelta(days=self.config.backfill_days)
                entry["since"] = format_time(start.replace(microsecond=0))
            url = entry.get("next")
            first = url is None
            if first:
                url = self._feed_path(repo, entry["since"])
            emitted: set[tuple[str | None, str]] = set()
            while url is not None:
                endpoint = "GET /repos/{o}/{r}/issues"
                listed = self._list_page(url, endpoint, f"/repos/{repo}/issues", entry, "etag", first)
                if listed is None:
                    # Unchanged since the answer whose ETag this was: its issues with no comment still
                    # have none (a comment changes the listing), as if this process had read them.
                    quiet = entry.get("quiet")  # a damaged list is read as none: those issues look first
                    numbers = quiet if isinstance(quiet, list) else []
                    self._no_comments.update(f"{repo}#{n}".lower() for n in numbers if type(n) is int)
                    break
                response, items = listed
                records, rejected, times = self._normalise_page(items, public, emitted)
                if times:
                    hwm = max(times + ([entry["hwm"]] if entry.get("hwm") else []))
                    entry["hwm"] = hwm
                url = self._next_url(repo, response, times)
                if url is None:
                    self._finish(entry, one_page=first)
                else:
                    entry["next"] = url
                if url is None and first:
                    entry["quiet"] = _quiet_numbers(items)
                else:
                    entry.pop("quiet", None)
                first = False
                yield Page(records, self._dump_cursor(state), done=False, rejected=rejected)
            if self.read_comments:
                yield from self._comment_pages(repo, entry, state)

    # -- the comment feed (the conversation mirror) ---------------------------------------

    def _comment_pages(self, repo: str, entry: dict, state: dict[str, dict]) -> Iterator[Page]:
        """The repository's comments made or edited since the last read, oldest change first.

        ``GET /repos/{o}/{r}/issues/comments?since=&sort=updated&direction=asc``, with the
        last ETag: an idle read is a 304. The first read starts now (earlier comments are
        not replayed). GitHub's list does not show deleted comments."""
        if not entry.get("c_since"):
            entry["c_since"] = format_time((self.clock() - OVERLAP).replace(microsecond=0))
        url = entry.get("c_next")
        first = url is None
        if first:
            query = urlencode({"since": entry["c_since"], "sort": "updated", "direction": "asc", "per_page": PER_PAGE})
            url = f"repos/{repo}/issues/comments?{query}"
        while url is not None:
            listed = self._list_page(
                url, "GET /repos/{o}/{r}/issues/comments", f"/repos/{repo}/issues/comments", entry, "c_etag", first
            )
            if listed is None:
                return
            response, items = listed
            remarks, times = self._remarks(repo, items)
            if times:
                entry["c_hwm"] = max(times + ([entry["c_hwm"]] if entry.get("c_hwm") else []))
            url = next_link(response)
            if url is None:
                entry.pop("c_next", None)
                hwm = parse_time(entry.pop("c_hwm", None))
                if hwm is not None and not first:  # as _finish: one page keeps its since and ETag
                    new_since = format_time(hwm - OVERLAP)
                    if new_since > entry["c_since"]:
                        entry["c_since"] = new_since
                        entry.pop("c_etag", None)  # it was for the old since
            else:
                entry["c_next"] = url
            first = False
            yield Page([], self._dump_cursor(state), done=False, remarks=remarks)

    def _list_page(
        self, url: str, endpoint: str, path: str, entry: dict, etag_key: str, first: bool
    ) -> tuple[requests.Response, list] | None:
        """One page of a repository list feed; None when the first page is unchanged (a 304
        against the ETag kept in ``entry[etag_key]``, which a first page's answer renews)."""
        headers = {"If-None-Match": entry[etag_key]} if first and entry.get(etag_key) else None
        response, items = self._get(url, endpoint, headers=headers)
        if response.status_code == 304:
            return None
        if not isinstance(items, list):
            raise PayloadError(self.name, f"GET {path}: expected a list, got {type(items).__name__}", payload=items)
        if first:
            entry[etag_key] = response.headers.get("ETag")
        return response, items

    def _remarks(self, repo: str, items: list) -> tuple[list[IssueRemark], list[str]]:
        remarks: list[IssueRemark] = []
        times: list[str] = []
        for item in items:
            try:
                created = parse_time(item["created_at"])
                updated = parse_time(item["updated_at"])
                number = str(item["issue_url"]).rstrip("/").rsplit("/", 1)[-1]
                if created is None or updated is None or not number.isdigit():
                    raise ValueError("created_at, updated_at or issue_url")
                user = item.get("user") or {}
                body = str(item.get("body") or "")
                times.append(format_time(updated))
                remarks.append(
                    IssueRemark(
                        id=str(item["id"]),
                        issue_key=f"{repo}#{number}",
                        body=_without_markers(body),
                        created_at=created,
                        updated_at=updated,
                        author_id=str(user.get("id")) if user.get("id") is not None else None,
                        author_name=str(user.get("login") or "") or None,
                        url=str(item.get("html_url") or ""),
                        bot=user.get("type") == "Bot" or item.get("performed_via_github_app") is not None,
                        markers=find_markers(body),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                log.warning("skipping a malformed comment in the comment feed", connector=self.name, repo=repo)
        return remarks, times

    def own_accounts(self) -> tuple[str, ...]:
        return (self._login,) if self._login else ()

    def _finish(self, entry: dict, *, one_page: bool) -> None:
        """The last page of a repository's read: advance ``since``; keep the ETag only if it still applies.

        A read that one page held (``one_page``: the first page had no next) keeps its
        ``since``: the ETag of that page's answer is then the next poll's validator, so
        the poll after a change is a free 304 when nothing changed again. Moving ``since``
        would change the URL, whose first answer can only be a full 200. ``since`` moves
        up to the high-water mark less ``OVERLAP`` once the listing needs a second page."""
        entry.pop("next", None)
        hwm = parse_time(entry.pop("hwm", None))
        if hwm is not None and not one_page:
            new_since = format_time(hwm - OVERLAP)
            if new_since > entry["since"]:
                entry["since"] = new_since
                entry.pop("etag", None)  # it was for the old since

    def _next_url(self, repo: str, response: requests.Response, times: list[str]) -> str | None:
        link = next_link(response)
        if link is None:
            return None
        if len(times) >= 2:
            oldest, newest = min(times), parse_time(max(times))
            assert newest is not None  # times holds only non-empty stamps (_normalise_page)
            floor = format_time(newest - timedelta(seconds=1))
            if oldest < floor:
                return self._feed_path(repo, floor)
        return link

    def _feed_path(self, repo: str, since: str) -> str:
        query = urlencode({"state": "all", "since": since, "sort": "updated", "direction": "asc", "per_page": PER_PAGE})
        return f"repos/{repo}/issues?{query}"

    def _normalise_page(self, items: list, public: bool, emitted: set[tuple[str | None, str]]):
        records: list[Issue] = []
        rejected: list[Rejected] = []
        times: list[str] = []
        for item in items:
            record_id = str(item.get("id")) if isinstance(item, dict) and item.get("id") is not None else None
            try:
                if not isinstance(item, dict):
                    raise TypeError(f"expected an object, got {type(item).__name__}")
                updated = format_time(parse_time(item["updated_at"]))
                if updated is None:
                    raise ValueError("updated_at is empty")
                times.append(updated)
                if is_pull_request(item) and not self.config.include_pull_requests:
                    continue
                if (record_id, updated) in emitted:
                    continue
                emitted.add((record_id, updated))
                records.append(self._issue(item, public))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                rejected.append(Rejected(record_id, f"github issue payload: {type(exc).__name__}: {exc}", item))
        return records, rejected, times

    def _refresh_visibility(self, repo: str, entry: dict) -> None:
        """Seed the cache from the cursor, re-check when stale, write the result back."""
        name = repo.lower()
        if name not in self._visibility and "public" in entry:
            self._visibility[name] = _Visibility(
                bool(entry["public"]), entry.get("vis_etag"), float(entry.get("vis_at") or 0)
            )
        entry["public"] = self.is_public(repo)
        cached = self._visibility[name]
        entry["vis_etag"] = cached.etag
        entry["vis_at"] = cached.checked_at

    def _load_cursor(self, cursor: str | None) -> dict[str, dict]:
        if not cursor:
            return {}
        try:
            data = json.loads(cursor)
            if data.get("v") != 1 or not isinstance(data.get("repos"), dict):
                raise ValueError("unknown version")
            repos = {k.lower(): dict(v) for k, v in data["repos"].items()}
        except (ValueError, TypeError, AttributeError):
            raise ConfigError(
                [
                    f"connector {self.name}: stored cursor {cursor[:80]!r} is unreadable "
                    "(want GitHub cursor v1 JSON); reset this connector's cursor to read again "
                    "from the backfill window"
                ]
            ) from None
        # Repositories dropped from the config are forgotten; new ones start fresh.
        return {repo: repos.get(repo.lower(), {}) for repo in self.config.repositories}

    @staticmethod
    def _dump_cursor(state: dict[str, dict]) -> str:
        return json.dumps({"v": 1, "repos": state}, sort_keys=True)

    # -- normalisation ----------------------------------------------------------

    def _issue(self, item: dict, public: bool | None = None) -> Issue:
        repo = repo_of(item)
        number, ident = item["number"], item["id"]
        for label, value in (("number", number), ("id", ident)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{label} is {value!r}, expected a positive integer")
        for label in ("title", "html_url", "state"):
            if not isinstance(item[label], str):
                raise TypeError(f"{label} is {type(item[label]).__name__}, expected a string")
        owner, name = repo.split("/", 1)
        location = IssueLocation(owner, name, number)
        ident = str(ident)
        self._known[ident] = location
        if item.get("comments") == 0:
            self._no_comments.add(location.key.lower())
        else:
            self._no_comments.discard(location.key.lower())
        if public is None:
            public = self.is_public(repo)
        category, state_name = state_of(item)
        updated = parse_time(item["updated_at"])
        if updated is None:
            raise ValueError("updated_at is empty")
        return Issue(
            ref=Ref(self.name, ident),
            key=location.key,
            url=str(item["html_url"]),
            title=str(item["title"]),
            state=category,
            state_name=state_name,
            native=native_of(item),
            updated_at=updated,
            assignee=assignee_of(item),
            team=repo,
            resolution=item.get("state_reason") if isinstance(item.get("state_reason"), str) else None,
            public=public,
        )

    # -- links ------------------------------------------------------------------

    def native_of_stored(self, issue: Issue) -> dict[str, str | None]:
        # normalise shows state_reason in the state name: "Closed (not planned)".
        found = re.search(r"\((?P<reason>[a-z ]+)\)\s*$", issue.state_name or "")
        reason = found["reason"].replace(" ", "_") if found else None
        if reason is None and issue.state is StateCategory.CANCELED:
            reason = "not_planned"
        return {"state": "closed" if issue.state.is_closed else "open", "reason": reason}

    def key_prefixes(self) -> frozenset[str] | None:
        """None of the PREFIX-123 form: GitHub keys are owner/repo#12."""
        return frozenset()

    def link_patterns(self) -> list[str]:
        host = re.escape(re.sub(r"^https?://", "", web_root(self.config.url)))
        repos = "|".join(re.escape(r) for r in self.config.repositories)
        return [
            rf"https?://{host}/(?P<ref>[A-Za-z0-9-]+/[A-Za-z0-9._-]+/issues/\d+)\b",
            rf"(?<![\w/.-])(?P<ref>(?i:{repos})#\d+)\b",
        ]

    def normalise_ref(self, text: str) -> str:
        """``owner/repo/issues/n`` or an issue URL → ``owner/repo#n`` (other forms unchanged),
        with a followed repository spelled as configured (GitHub's names ignore case), so
        the store finds the issue whichever way a person typed or pasted it."""
        m = re.search(r"([A-Za-z0-9-]+)/([A-Za-z0-9._-]+)/issues/(\d+)/?$", text)
        key = f"{m.group(1)}/{m.group(2)}#{m.group(3)}" if m else text
        k = KEY_RE.match(key)
        if k:
            spelled = {r.lower(): r for r in self.config.repositories}.get(f"{k['owner']}/{k['repo']}".lower())
            if spelled is not None:
                return f"{spelled}#{k['number']}"
        return key

    def _locate(self, ref: str) -> IssueLocation:
        ref = self.normalise_ref(ref.strip())
        m = KEY_RE.match(ref)
        if m:
            return IssueLocation(m["owner"], m["repo"], int(m["number"]))
        if ref.isdigit():
            known = self._known.get(ref)
            if known is not None:
                return known
            hint = self.key_lookup(ref) if self.key_lookup is not None else None
            m = KEY_RE.match(hint or "")
            if m:
                return IssueLocation(m["owner"], m["repo"], int(m["number"]))
            raise NotFound(
                self.name,
                f"issue id {ref} has not been seen by this process and GitHub cannot "
                "fetch an issue by id; pass its key (owner/repo#n)",
                status=None,
            )
        raise NotFound(
            self.name, f"{ref!r} is not a GitHub issue reference (want owner/repo#n, an issue URL, or an issue id)"
        )

    # -- reads ------------------------------------------------------------------

    @_issue_path
    def get_issue(self, ref: str) -> Issue:
        """By key, URL or a known id; follows a transfer (301) to the issue's new key."""
        location = self._locate(ref)
        item = self._get_object(location.path, "GET /repos/{o}/{r}/issues/{n}")
        return self._issue(item)

    def _gone_from_404(self, ref: str, exc: NotFound) -> ApiError:
        if exc.status != 404 or "/issues/{n}" not in str(exc):
            return exc
        try:
            location = self._locate(ref)
        except NotFound:
            return exc
        if location.full_name.lower() not in self._repos:
            return exc
        return Gone(
            self.name,
            f"{location.key} is deleted, or no longer visible to this token "
            f"(GitHub answered 404 in a followed repository)",
            status=404,
        )

    # No batch read by id in REST: one conditional GET per issue. An issue
    # unchanged since the stored ETag answers 304, which does not count against
    # the primary rate limit.
    presence_batch = 1

    def presence(self, issue_ids: list[str], validators: dict[str, str]) -> Presence:
        """``GET /repos/{o}/{r}/issues/{n}`` with ``If-None-Match`` per issue: 304 unchanged,
        200 found (a transferred issue is followed to its new repository), 410 or a 404
        in a followed repository gone."""
        out = Presence()
        for ident in issue_ids:
            try:
                location = self._locate(ident)
            except NotFound:
                continue  # never seen under a key: nothing to ask GitHub
            etag = validators.get(ident)
            out.requests += 1
            try:
                response, body = self._get(
                    location.path, "GET /repos/{o}/{r}/issues/{n}", headers={"If-None-Match": etag} if etag else None
                )
            except Gone:
                out.gone[ident] = "GitHub answered 410 (deleted)"
                continue
            except NotFound as exc:
                gone = self._gone_from_404(ident, exc)
                if isinstance(gone, Gone):
                    out.gone[ident] = "GitHub answered 404 (deleted, or not visible to this token)"
                    continue
                raise
            if response.status_code == 304:
                out.unchanged.add(ident)
                continue
            if not isinstance(body, dict):
                continue  # unreadable now: checked again later
            try:
                issue = self._issue(body)
            except (KeyError, TypeError, ValueError):
                continue
            out.found[ident] = issue
            if response.headers.get("ETag"):
                out.validators[ident] = response.headers["ETag"]
        return out

    # The comment feed (``since``) does not list deleted comments: the comments syncd
    # mirrored are checked by id, one conditional GET each (a 304 is free).
    comment_presence_batch = 1

    def comments_present(self, comments: dict[str, str], validators: dict[str, str]) -> CommentPresence:
        """``GET /repos/{o}/{r}/issues/comments/{id}`` with ``If-None-Match`` per comment:
        200 or 304 present, 404 or 410 in a followed repository deleted."""
        out = CommentPresence()
        for comment_id, issue_id in comments.items():
            try:
                location = self._locate(issue_id)
            except NotFound:
                continue  # the issue was never seen under a key: nothing to ask GitHub
            if location.full_name.lower() not in self._repos:
                continue  # outside the followed repositories a 404 does not say "deleted"
            etag = validators.get(comment_id)
            out.requests += 1
            response, body = self._get(
                f"repos/{location.full_name}/issues/comments/{comment_id}",
                "GET /repos/{o}/{r}/issues/comments/{id}",
                headers={"If-None-Match": etag} if etag else None,
                expect=(404, 410),
            )
            if response.status_code in (404, 410):
                out.gone.add(comment_id)
                continue
            if response.status_code != 304 and not isinstance(body, dict):
                continue  # unreadable now: checked again later
            out.present.add(comment_id)
            if response.headers.get("ETag"):
                out.validators[comment_id] = response.headers["ETag"]
        return out

    def follows(self, issue: Issue) -> bool:
        return (issue.team or "").lower() in self._repos

    def _resolve(self, ref: str) -> tuple[IssueLocation, str]:
        """Current location and stable id of an issue (one GET, following a transfer)."""
        issue = self.get_issue(ref)
        return self._known[issue.ref.id], issue.ref.id

    @_issue_path
    def comments(self, ref: str) -> list[Comment]:
        """All comments on the issue, oldest first, with their syncd markers."""
        location = self._locate(ref)
        return [self._comment(c) for c in self._raw_comments(location)]

    def _raw_comments(self, location: IssueLocation) -> list[dict]:
        out: list[dict] = []
        url: str | None = f"{location.path}/comments?per_page={PER_PAGE}"
        while url is not None:
            response, items = self._get(url, "GET /repos/{o}/{r}/issues/{n}/comments")
            if not isinstance(items, list):
                raise PayloadError(self.name, "issue comments: expected a list", payload=items)
            out.extend(c for c in items if isinstance(c, dict))
            url = next_link(response)
        return out

    def _comment(self, raw: dict) -> Comment:
        body = raw.get("body") or ""
        return Comment(
            id=str(raw["id"]),
            body=body,
            public=True,
            author_id=(raw.get("user") or {}).get("login"),
            created_at=parse_time(raw["created_at"]) or self.clock(),
            markers=find_markers(body),
        )

    @_issue_path
    def find_marker(self, issue_id: str, key: str) -> bool:
        """Whether a comment carrying ``marker_token(key)`` is on the issue."""
        location = self._locate(issue_id)
        token = marker_token(key)
        return any(token in (c.get("body") or "") for c in self._raw_comments(location))

    # -- handoff: new issues ------------------------------------------------------

    def is_private(self, team: str) -> bool:
        """Whether repository ``team`` (owner/name) is private or internal (cached like :meth:`is_public`)."""
        repo = self._team_repo(team)
        try:
            return not self.is_public(repo)
        except NotFound:
            raise self._unknown_team(team) from None

    def create_issue(self, team: str, draft: IssueDraft, key: str) -> WriteResult:
        """Open an issue in repository ``team`` with ``POST /repos/{o}/{r}/issues``.

        The body ends with the hidden marker ``<!-- syncd:KEY -->`` that
        :meth:`find_created` looks for. Labels are sent only when the
        repository has them (GitHub would create unknown ones for a token that
        may push); the others are skipped and logged. GitHub Issues has no
        priority field, so ``draft.priority`` is not written. In a public
        repository a draft holding an e-mail address is refused before
        anything is sent: the engine writes only an opaque reference there.
        Before the one write: the repository's visibility (a conditional
        request, free when unchanged) and, once per process, its labels.
        """
        repo = self._team_repo(team)
        title = re.sub(r"\s+", " ", draft.title).strip()
        if len(title) > TITLE_MAX:  # GitHub answers 422 to a longer one
            title = title[: TITLE_MAX - 1].rstrip() + "…"
        if not title:
            raise Conflict(self.name, f"an issue for repository {repo} needs a title; the handoff draft has none")
        body = f"{draft.body.rstrip()}\n\n<!-- {marker_token(key)} -->\n"
        try:
            public = self.is_public(repo, max_age=0)
        except NotFound:
            raise self._unknown_team(team) from None
        if public and (EMAIL_RE.search(title) or EMAIL_RE.search(body)):
            raise PublicRepositoryRefused(
                self.name,
                f"refused to create an issue holding an e-mail address in public repository {repo}; "
                "write only an opaque reference to the ticket there",
            )
        payload: dict[str, Any] = {"title": title, "body": body}
        labels = self._existing_labels(repo, draft.labels)
        if labels:
            payload["labels"] = labels
        endpoint = "POST /repos/{o}/{r}/issues"
        try:
            response = self.http.request(
                "POST",
                f"repos/{repo}/issues",
                json=payload,
                allow_redirects=False,
                expect=(301, 302, 307, 308),
                endpoint=endpoint,
            )
        except NotFound:
            raise self._unknown_team(team) from None
        except AuthError as exc:
            raise AuthError(
                self.name,
                f"{str(exc).removeprefix(self.name + ': ')} (repository {repo}); give the token "
                "write access to the repository's issues",
                status=exc.status,
            ) from None
        except Conflict as exc:
            raise Conflict(
                self.name,
                f"{str(exc).removeprefix(self.name + ': ')} (new issue in repository {repo}); "
                "check the handoff's title and labels",
                status=exc.status,
            ) from None
        except Gone:
            raise Gone(
                self.name,
                f"repository {repo} (route team {team!r}) has issues turned off; turn them on "
                "in the repository's settings or route these tickets elsewhere",
                status=410,
            ) from None
        if response.status_code in (301, 302, 307, 308):
            moved = urlsplit(response.headers.get("Location") or "").path
            raise NotFound(
                self.name,
                f"repository {repo} (route team {team!r}) has moved ({moved or 'no Location'}); "
                "set the route's team to the repository's new owner/name",
                status=response.status_code,
            )
        raw = self._json(response, endpoint)
        try:
            issue = self._issue(raw, public)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(
                self.name, f"{endpoint}: the answer is not an issue ({type(exc).__name__}: {exc})", payload=raw
            ) from None
        return WriteResult(updated_at=issue.updated_at, id=issue.ref.id, key=issue.key)

    def find_created(self, team: str, key: str) -> str | None:
        """The id of the issue :meth:`create_issue` made with ``key`` in ``team``, if it did.

        Reads ONE page of ``GET /repos/{o}/{r}/issues?creator=LOGIN&state=all
        &sort=created&direction=desc&per_page=100`` and looks for the body's
        hidden marker. Why this and not ``GET /search/issues``: the issue list
        is read from the repository's own records and shows an issue the
        moment its create returned (the question asked right after a crash),
        while search answers from an index that lags behind by seconds to
        minutes and would say "not created" for an issue that was. Newest
        first, an issue created just before the crash is on the first page
        unless syncd opened 100 more in that repository since; ``creator``
        keeps out issues where someone else quoted the marker.
        """
        repo = self._team_repo(team)
        query = urlencode(
            {"creator": self._own_login(), "state": "all", "sort": "created", "direction": "desc", "per_page": PER_PAGE}
        )
        try:
            _, items = self._get(f"repos/{repo}/issues?{query}", "GET /repos/{o}/{r}/issues")
        except NotFound:
            raise self._unknown_team(team) from None
        if not isinstance(items, list):
            raise PayloadError(
                self.name, f"GET /repos/{repo}/issues: expected a list, got {type(items).__name__}", payload=items
            )
        token = f"<!-- {marker_token(key)} -->"
        for item in items:
            if not isinstance(item, dict) or is_pull_request(item) or token not in (item.get("body") or ""):
                continue
            try:
                owner, name = repo_of(item).split("/", 1)
                ident, number = str(int(item["id"])), int(item["number"])
            except (KeyError, TypeError, ValueError):
                raise PayloadError(
                    self.name,
                    f"GET /repos/{repo}/issues: the issue carrying marker {key} has no id or number",
                    payload=item,
                ) from None
            self._known[ident] = IssueLocation(owner, name, number)
            return ident
        return None

    def _own_login(self) -> str:
        """syncd's login on GitHub (``GET /user`` once per process, unless :meth:`check` told it)."""
        if not self._login:
            login = self._get_object("user", "GET /user").get("login")
            if not isinstance(login, str) or not login:
                raise PayloadError(self.name, "GET /user: the answer has no login")
            self._login = login
        return self._login

    def _team_repo(self, team: str) -> str:
        if not REPO_RE.match(team or ""):
            raise NotFound(
                self.name,
                f"route team {team!r} is not a GitHub repository; set the route's team "
                "to owner/name (e.g. acme/webapp)",
                status=None,
            )
        return team

    def _unknown_team(self, team: str) -> NotFound:
        return NotFound(
            self.name,
            f"repository {team} (route team) does not exist or this token cannot see it; "
            "check the route's team and give the token access to the repository's issues",
            status=404,
        )

    def _existing_labels(self, repo: str, wanted: tuple[str, ...]) -> list[str]:
        """``wanted`` as the repository spells them, leaving out (and logging) those it lacks."""
        if not wanted:
            return []
        cached = self._labels.get(repo.lower())
        if cached is None or (
            any(w.lower() not in cached.by_lower for w in wanted)
            and self.clock().timestamp() - cached.checked_at >= LABEL_RECHECK
        ):
            cached = self._labels[repo.lower()] = _Labels(self._read_labels(repo), self.clock().timestamp())
        out: list[str] = []
        for name in wanted:
            found = cached.by_lower.get(name.lower())
            if found is None:
                log.info("label not in repository, skipped", connector=self.name, repository=repo, label=name)
            elif found not in out:
                out.append(found)
        return out

    def _read_labels(self, repo: str) -> dict[str, str]:
        names: dict[str, str] = {}
        url: str | None = f"repos/{repo}/labels?per_page={PER_PAGE}"
        while url is not None:
            response, items = self._get(url, "GET /repos/{o}/{r}/labels")
            if not isinstance(items, list):
                raise PayloadError(self.name, f"GET /repos/{repo}/labels: expected a list", payload=items)
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names[item["name"].lower()] = item["name"]
            url = next_link(response)
        return names

    # -- writes -----------------------------------------------------------------

    @_issue_path
    def add_comment(self, issue_id: str, body: str, key: str, *, customer_data: bool = False) -> WriteResult:
        """A new comment ending with ``<!-- syncd:KEY -->``.

        ``customer_data=True`` says the body names a customer: refused (with
        :class:`PublicRepositoryRefused`) in a public repository.
        """
        location = self._locate(issue_id)
        text = f"{body.rstrip()}\n\n<!-- {marker_token(key)} -->\n"
        location = self._guard(location, text, customer_data)
        raw = self._write(
            "POST",
            f"{location.path}/comments",
            {"body": text},
            location,
            "POST /repos/{o}/{r}/issues/{n}/comments",
            sensitive=customer_data,
        )
        return WriteResult(updated_at=parse_time(raw.get("updated_at")), id=str(raw.get("id")))

    @_issue_path
    def upsert_comment(
        self,
        issue_id: str,
        body: str,
        key: str,
        slot: str = CONTEXT_SLOT,
        *,
        customer_data: bool = False,
        known: SlotRecord | None = None,
    ) -> WriteResult:
        """Keep ONE syncd comment per (issue, ``slot``), edited in place.

        The comment is found by the hidden slot marker ``<!-- syncd:SLOT -->``
        (in a comment by this syncd user when :meth:`check` has told who that
        is), created when absent, and edited with
        ``PATCH /repos/{o}/{r}/issues/comments/{id}`` when its text changes.
        It also carries ``<!-- syncd:KEY -->`` of the latest write, so
        :meth:`find_marker` can tell that write landed. In the context slot
        the list of linked tickets kept by :meth:`attach_ticket` is preserved.
        A text equal to the comment's but for the key marker is not written
        again. The comment's id is remembered (or named by the store,
        ``known.comment_id``), so the next call reads that one comment
        (checking it still holds the slot marker) instead of scanning the
        issue. ``customer_data`` as for :meth:`add_comment`.
        """
        if not SLOT_RE.match(slot):
            raise ValueError(f"slot {slot!r}: use lowercase letters, digits, - and _")

        def compose(existing: str | None, public: bool) -> str:
            if public and customer_data:
                raise self._refusal(location)
            tickets = TICKETS_BLOCK_RE.search(existing or "")
            return self._compose(body, tickets.group(0) if tickets else "", slot, key)

        location = self._locate(issue_id)
        if customer_data and self._public_for_write(location):
            raise self._refusal(location)  # before reading anything
        if known is not None and known.comment_id and known.comment_id.isdigit():
            # The comment the store says syncd's last delivered write answered with: read
            # by its id (checked to hold the slot), not looked for among the issue's comments.
            self._slot_comments.setdefault((location.key, slot), int(known.comment_id))
        return self._upsert(location, slot, compose, lambda public: customer_data)

    def attach_ticket(self, issue_id: str, url: str, title: str, subtitle: str, key: str) -> WriteResult:
        """List the ticket in the issue's context comment, once per ticket URL.

        Private repository: a line with the ticket's title (linked) and
        subtitle. Public repository: only an opaque reference (a hash of the
        ticket URL) and the count of linked tickets; any line written while
        the repository was private is rewritten in the opaque form.
        """
        return self.attach_tickets(issue_id, [(url, title, subtitle)], key)

    @_issue_path
    def attach_tickets(self, issue_id: str, tickets: list[tuple[str, str, str]], key: str) -> WriteResult:
        """:meth:`attach_ticket` for many (url, title, subtitle) at once: one edit, not one per ticket."""

        def compose(existing: str | None, public: bool) -> str:
            return self._context_text(existing, tickets, public, key)

        location = self._locate(issue_id)
        # Lines composed for a private repository name the customer.
        return self._upsert(location, CONTEXT_SLOT, compose, lambda public: not public)

    @classmethod
    def _context_text(cls, existing: str | None, tickets: list[tuple[str, str, str]], public: bool, key: str) -> str:
        """The context comment's text: the lines it had plus ``tickets``; all opaque when ``public``."""
        existing = existing or ""
        block = TICKETS_BLOCK_RE.search(existing)
        lines = {m["hash"]: m.group(0) for m in TICKET_LINE_RE.finditer(block.group(0) if block else "")}
        for url, title, subtitle in tickets:
            ref = ticket_hash(url)
            if public:
                lines[ref] = _opaque_line(ref)
            else:
                label = _inline(title) or "Support ticket"
                extra = f" — {_inline(subtitle)}" if _inline(subtitle) else ""
                lines[ref] = f"- [{label}]({url}){extra} <!-- syncd:t={ref} -->"
        if public:
            lines = {h: _opaque_line(h) for h in lines}
        block_text = (
            "<!-- syncd:tickets -->\n"
            f"**Linked support tickets: {len(lines)}**\n\n" + "\n".join(lines.values()) + "\n<!-- /syncd:tickets -->\n"
        )
        head = existing
        for pattern in (TICKETS_BLOCK_RE, KEY_MARKER_RE):
            head = pattern.sub("", head)
        head = head.replace(f"<!-- syncd:{CONTEXT_SLOT} -->", "").strip()
        return cls._compose(head, block_text, CONTEXT_SLOT, key)

    # -- a repository turned public ----------------------------------------------

    def visibility(self) -> dict[str, bool]:
        """Each repository's visibility as last read (lower-case owner/name → public); asks nothing.

        Read by :meth:`is_public`: on every poll once ``visibility_ttl`` has
        passed, and before a write (a private repository every time, a public one
        once ``write_visibility_ttl`` has passed; a conditional request, free when
        unchanged). The engine compares it with what it last acted on."""
        return {name: v.public for name, v in self._visibility.items()}

    def make_opaque(self, issue_id: str, rewrite: OpaqueRewrite, key: str) -> OpaqueResult:
        """Rewrite syncd's texts on one issue of a repository that turned public.

        Reads the issue's comments (one page per 100) and, when syncd created
        the issue, the issue itself; then edits in place, one PATCH per text
        that still names the customer: the context comment (every linked
        ticket as its opaque reference), each slot comment in
        ``rewrite.slots`` (the demand comment, composed by the engine), and
        the title and description of an issue created from an escalation
        (the public draft, keeping its create marker). Comments without a
        slot marker (owner-gap notes) carry no customer data and stay.

        A text someone else edited after syncd wrote it is not overwritten:
        a comment whose ``updated_at`` is later than what GitHub answered to
        syncd's last write of it (``rewrite.written``; with no record, one
        edited at all), an issue title or description that is neither of
        syncd's drafts. REST does not say who edited a text: for the kept
        ones one GraphQL query (``editor``) names them (None if it cannot be
        asked). Sending again after a crash
        finds the texts already opaque and writes nothing twice.
        """
        location = self._locate(issue_id)
        login = self._own_login()
        rewritten: list[str] = []
        kept: list[KeptText] = []
        written: dict[str, str] = {}
        nodes: list[str] = []  # GraphQL node id of each kept text
        for raw in self._raw_comments(location):
            body = raw.get("body") or ""
            if (raw.get("user") or {}).get("login") != login:
                continue
            slot = next((s for s in (CONTEXT_SLOT, *rewrite.slots) if f"<!-- syncd:{s} -->" in body), None)
            if slot is None:
                continue
            what = "the linked-tickets comment" if slot == CONTEXT_SLOT else f"the {slot} comment"
            if slot == CONTEXT_SLOT:
                text = self._context_text(body, [], True, key)
            else:
                tickets = TICKETS_BLOCK_RE.search(body)
                text = self._compose(rewrite.slots[slot], tickets.group(0) if tickets else "", slot, key)
            if KEY_MARKER_RE.sub("", body) == KEY_MARKER_RE.sub("", text):
                continue  # opaque already (or rewritten before a crash)
            edited = self._edited_since(raw, rewrite.written.get(str(raw.get("id"))))
            if edited is not None:
                kept.append(KeptText(what, str(raw.get("html_url") or location.key), None, edited))
                nodes.append(str(raw.get("node_id") or ""))
                continue
            path = f"repos/{location.full_name}/issues/comments/{raw['id']}"
            answer = self._write(
                "PATCH", path, {"body": text}, location, "PATCH /repos/{o}/{r}/issues/comments/{id}", sensitive=False
            )
            rewritten.append(what)
            written[str(answer["id"])] = str(answer.get("updated_at") or "")
        if rewrite.created:
            done, left, node = self._opaque_created(location, rewrite.created)
            rewritten += done
            kept += left
            nodes += [node] * len(left)
        if kept:
            editors = self._editors([n for n in nodes if n])
            kept = [dataclasses.replace(k, edited_by=editors.get(n)) for k, n in zip(kept, nodes)]
        return OpaqueResult(tuple(rewritten), tuple(kept), written)

    def _editors(self, node_ids: list[str]) -> dict[str, str]:
        """Node id → login of whoever last edited it: one GraphQL query (REST does not say).

        Only for texts syncd leaves alone, so rarely sent; any failure
        answers {} (the note then says "someone other than syncd")."""
        if not node_ids:
            return {}
        try:
            response = self.http.request(
                "POST",
                graphql_url(self.config.url),
                idempotent=True,
                json={"query": EDITORS_QUERY, "variables": {"ids": node_ids}},
                endpoint="POST /graphql",
            )
            nodes = ((response.json() or {}).get("data") or {}).get("nodes") or []
        except (SyncdError, ValueError, AttributeError) as exc:
            log.info("could not ask GitHub who edited syncd's texts", connector=self.name, error=str(exc))
            return {}
        out = {}
        for node in nodes:
            login = ((node or {}).get("editor") or {}).get("login") if isinstance(node, dict) else None
            if isinstance(login, str) and isinstance(node.get("id"), str):
                out[node["id"]] = login
        return out

    def _opaque_created(self, location: IssueLocation, created: dict) -> tuple[list[str], list[KeptText], str]:
        """The title and description of an issue syncd created: the public draft where the private one stands."""
        item = self._get_object(location.path, "GET /repos/{o}/{r}/issues/{n}")
        token = f"<!-- {marker_token(str(created['key']))} -->"

        def drafted(which: str) -> tuple[str, str]:
            draft = created.get(which) or {}
            title = re.sub(r"\s+", " ", str(draft.get("title") or "")).strip()
            if len(title) > TITLE_MAX:
                title = title[: TITLE_MAX - 1].rstrip() + "…"
            return title, f"{str(draft.get('body') or '').rstrip()}\n\n{token}\n"

        private, public = drafted("private"), drafted("public")
        change: dict[str, str] = {}
        kept: list[KeptText] = []
        url = str(item.get("html_url") or location.key)
        for field_name, what, index in (("title", "the issue title", 0), ("body", "the issue description", 1)):
            now = item.get(field_name) or ""
            if now == public[index]:
                continue
            if now == private[index]:
                change[field_name] = public[index]
            else:
                kept.append(KeptText(what, url, None, parse_time(item.get("updated_at"))))
        if change:
            self._write("PATCH", location.path, change, location, "PATCH /repos/{o}/{r}/issues/{n}", sensitive=False)
        names = {"title": "the issue title", "body": "the issue description"}
        return [names[f] for f in change], kept, str(item.get("node_id") or "")

    @staticmethod
    def _edited_since(raw: dict, written: str | None) -> datetime | None:
        """When someone else edited the comment after syncd's last write of it (None: they did not)."""
        updated = parse_time(raw.get("updated_at"))
        if updated is None:
            return None
        if written is not None:
            ours = parse_time(written)
            return updated if ours is not None and updated > ours else None
        # No record of syncd's last write (a lost store): an edited comment may be anyone's edit.
        return updated if updated != parse_time(raw.get("created_at")) else None

    # -- write plumbing ---------------------------------------------------------

    @staticmethod
    def _compose(body: str, tickets: str, slot: str, key: str) -> str:
        parts = [p for p in (body.strip(), tickets.strip()) if p]
        return "\n\n".join(parts) + f"\n\n<!-- syncd:{slot} -->\n<!-- {marker_token(key)} -->\n"

    def _upsert(
        self,
        location: IssueLocation,
        slot: str,
        compose: Callable[[str | None, bool], str],
        sensitive: Callable[[bool], bool],
    ) -> WriteResult:
        """Find the slot comment, compose its new text from the old, write it if it changed."""
        existing = self._find_slot_comment(location, slot)
        if existing is not None:
            location = self._location_of_comment(existing) or location
        public = self._public_for_write(location)
        text = compose(existing.get("body") if existing else None, public)
        if public:
            self._refuse_personal_data(location, text)
        if existing is None:
            raw = self._write(
                "POST",
                f"{location.path}/comments",
                {"body": text},
                location,
                "POST /repos/{o}/{r}/issues/{n}/comments",
                sensitive=sensitive(public),
            )
        elif KEY_MARKER_RE.sub("", existing.get("body") or "") == KEY_MARKER_RE.sub("", text):
            # Same text: no edit just to swap the key marker. A re-send after a
            # crash (find_marker said no) lands here too and is rightly a no-op.
            return WriteResult(updated_at=parse_time(existing.get("updated_at")), id=str(existing["id"]))
        else:
            path = f"repos/{location.full_name}/issues/comments/{existing['id']}"
            raw = self._write(
                "PATCH",
                path,
                {"body": text},
                location,
                "PATCH /repos/{o}/{r}/issues/comments/{id}",
                sensitive=sensitive(public),
            )
        moved = self._location_of_comment(raw)
        self._slot_comments[((moved or location).key, slot)] = int(raw["id"])
        return WriteResult(updated_at=parse_time(raw.get("updated_at")), id=str(raw.get("id")))

    def _find_slot_comment(self, location: IssueLocation, slot: str) -> dict | None:
        """The slot's comment: the remembered one if it still holds the marker, else a scan."""
        marker = f"<!-- syncd:{slot} -->"
        cached = self._slot_comments.get((location.key, slot))
        if cached is not None:
            response, raw = self._get(
                f"repos/{location.full_name}/issues/comments/{cached}",
                "GET /repos/{o}/{r}/issues/comments/{id}",
                expect=(404,),
            )
            if response.status_code != 404:
                if isinstance(raw, dict) and marker in (raw.get("body") or ""):
                    return raw
        if cached is None and location.key.lower() in self._no_comments:
            return None  # the feed read this issue with no comment at all
        for raw in self._raw_comments(location):
            author = (raw.get("user") or {}).get("login")
            if marker in (raw.get("body") or "") and (self._login is None or author == self._login):
                return raw
        return None

    @staticmethod
    def _location_of_comment(raw: dict) -> IssueLocation | None:
        """Where a comment's issue lives now, from its ``issue_url`` (comments move with transfers)."""
        m = re.search(r"/repos/([^/]+)/([^/]+)/issues/(\d+)$", raw.get("issue_url") or "")
        return IssueLocation(m.group(1), m.group(2), int(m.group(3))) if m else None

    def _public_for_write(self, location: IssueLocation) -> bool:
        """Visibility for a write. A repository last read as public is trusted for
        ``write_visibility_ttl`` seconds, so a burst of writes there reads it once, not once
        per write; one last read as private is read again before every write (a conditional
        request, free when unchanged), since the private form names the customer and must
        never land in a repository that has just turned public. Stale knowledge can only
        make a write more careful, never less."""
        cached = self._visibility.get(location.full_name.lower())
        ttl = self.config.write_visibility_ttl
        if cached is not None and cached.public and ttl > 0 and self.clock().timestamp() - cached.checked_at < ttl:
            return True
        return self.is_public(location.full_name, max_age=0)

    def _refusal(self, location: IssueLocation) -> PublicRepositoryRefused:
        return PublicRepositoryRefused(
            self.name,
            f"refused to write customer data to public repository {location.full_name} "
            f"({location.key}); write only an opaque reference there",
        )

    def _guard(self, location: IssueLocation, text: str, customer_data: bool) -> IssueLocation:
        if self._public_for_write(location):
            if customer_data:
                raise self._refusal(location)
            self._refuse_personal_data(location, text)
        return location

    def _refuse_personal_data(self, location: IssueLocation, text: str) -> None:
        if EMAIL_RE.search(text):
            raise PublicRepositoryRefused(
                self.name,
                f"refused to write an e-mail address to public repository {location.full_name} "
                f"({location.key}); remove customer details from the text",
            )

    def _write(
        self, method: str, path: str, body: dict, location: IssueLocation, endpoint: str, *, sensitive: bool
    ) -> dict:
        """One mutating request; on 301 (the issue moved) re-resolve and send once more.

        ``sensitive``: the text may name a customer, so it must not follow the
        issue into a public repository.
        """
        self._no_comments.discard(location.key.lower())  # from now on, it may hold one
        response = self.http.request(
            method, path, json=body, allow_redirects=False, expect=(301, 302, 307, 308), endpoint=endpoint
        )
        if response.status_code in (301, 302, 307, 308):
            moved, _ = self._resolve(location.key)
            if moved == location:
                raise ApiError(self.name, f"{endpoint}: {location.key} redirects to itself", status=301)
            new_path = path.replace(f"repos/{location.full_name}/issues/{location.number}", moved.path, 1)
            new_path = new_path.replace(f"repos/{location.full_name}/", f"repos/{moved.full_name}/", 1)
            if self._public_for_write(moved):
                if sensitive:
                    raise self._refusal(moved)
                self._refuse_personal_data(moved, body.get("body") or "")
            response = self.http.request(method, new_path, json=body, allow_redirects=False, endpoint=endpoint)
        raw = self._json(response, endpoint)
        if not isinstance(raw, dict) or "id" not in raw:
            raise PayloadError(self.name, f"{endpoint}: the answer has no comment id", payload=raw)
        return raw

    # -- helpers ----------------------------------------------------------------

    def _get(
        self, path: str, endpoint: str, *, headers: dict[str, str] | None = None, expect: tuple[int, ...] = ()
    ) -> tuple[requests.Response, Any]:
        """A GET and its JSON (None for 304 or an expected error); a body that is not
        JSON (truncated, an HTML error page) is asked for again, like a 5xx."""
        for attempt in range(1, self.config.max_attempts + 1):
            response = self.http.request("GET", path, headers=headers, expect=expect, endpoint=endpoint)
            if response.status_code == 304 or response.status_code in expect:
                return response, None
            try:
                return response, response.json()
            except ValueError:
                if attempt < self.config.max_attempts:
                    self._sleep(self.http._backoff_delay(attempt))
        raise TransientError(
            self.name, f"{endpoint}: response body is not JSON after {self.config.max_attempts} attempts"
        )

    def _get_object(self, path: str, endpoint: str) -> dict:
        _, body = self._get(path, endpoint)
        if not isinstance(body, dict):
            raise PayloadError(self.name, f"{endpoint}: expected an object, got {type(body).__name__}", payload=body)
        return body

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PayloadError(self.name, f"{what}: HTTP {response.status_code} answer is not JSON") from None


def _opaque_line(ref: str) -> str:
    return f"- Support ticket `{ref}` <!-- syncd:t={ref} -->"


def _inline(text: str | None) -> str:
    """One line of Markdown-safe text for a list item: a bracket left unescaped could
    end the link label, so it is shown as a parenthesis; escaped ones are kept."""
    text = re.sub(r"\s+", " ", (text or "")).strip()
    return re.sub(r"\\.|[\[\]]", lambda m: _BRACKETS.get(m.group(0), m.group(0)), text)


_BRACKETS = {"[": "(", "]": ")"}
