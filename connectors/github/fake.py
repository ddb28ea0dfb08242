"""A fake GitHub REST API (issues) for the demo, end-to-end tests and benchmarks.

It speaks the wire format of what syncd uses: ``GET /user``, repositories
(public or private, visibility changeable), the issue list of a repository
with ``state``/``since``/``sort``/``direction``/``per_page``/``page`` and a real
``Link`` header (pointing at ``/repositories/{id}/issues`` as GitHub's does),
issue create (unknown labels are created, as GitHub does for a token that
may push) and get/update, the ``creator`` filter of the issue list, the
repository's labels (paged), comments (list, create, get, edit), the GraphQL
``nodes(ids:)`` question of who last edited a comment or issue, ETags with 304 on
``If-None-Match`` (a 304 does not spend the rate limit), ``x-ratelimit-*``
headers and a primary limit that answers 403 when spent, a secondary limit
on demand (403 with GitHub's message, requests still remaining, and
``retry-after`` or, as GitHub also answers, none), Bearer auth (401 otherwise), and moved
(301 with ``Location``) and deleted (410) issues.

Timestamps are the real clock in whole seconds, never going back, so that
``since`` works with a connector that computes its window from the clock.

People act through :meth:`create_repo`, :meth:`create_issue`, :meth:`close`,
:meth:`reopen`, :meth:`assign`, :meth:`comment`, :meth:`edit_comment`,
:meth:`edit_issue_body`, :meth:`transfer`,
:meth:`delete`, :meth:`set_visibility`, :meth:`create_label` and
:meth:`disable_issues`; :meth:`issues_in` lists a repository's issues.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode

from syncd.sandbox.server import FakeRequest, FakeResponse, FakeService, HttpFault

DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
SANDBOX_GITHUB_TOKEN = "sandbox-github-token"
SANDBOX_GITHUB_LOGIN = "syncd-bot"
GITHUB_REPOSITORIES = [
    # owner/name, private: the repositories the sandbox seeds and syncd is configured for
    ("sandbox/mobile-sdk", False),  # the customers' SDK: public, anyone can read it
    ("sandbox/billing", True),
]


def gh_error(status: int, message: str, doc: str = DOCS, headers: dict[str, str] | None = None) -> HttpFault:
    """GitHub's error body: ``{"message", "documentation_url", "status"}``."""
    return HttpFault(status, {"message": message, "documentation_url": doc, "status": str(status)}, headers)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    return f"{kind}_" + base64.b64encode(f"{kind}{ident}".encode()).decode().rstrip("=")


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    visibility: str  # public, private, internal
    created: int
    updated: int
    next_number: int = 1
    labels: dict[str, str] = field(default_factory=dict)  # lower-case name -> name
    has_issues: bool = True

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class FakeComment:
    id: int
    issue_id: int
    body: str
    user: str
    created: int
    updated: int
    editor: str | None = None  # who last edited it, when someone did


@dataclass
class FakeIssue:
    id: int
    repo: FakeRepo
    number: int
    title: str
    body: str
    user: str
    created: int
    updated: int
    state: str = "open"
    state_reason: str | None = None
    closed: int | None = None
    assignees: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    pull_request: bool = False
    comment_ids: list[int] = field(default_factory=list)
    editor: str | None = None  # who last edited the title or description, when someone did
    edited: int | None = None


class GitHubFake(FakeService):
    name = "github"
    # Searches and batch reads sent by POST change nothing: no webhook for them.
    reads_by_post = ("/graphql",)
    default_port = 8803
    world = "connectors.github.seed:GitHubWorld"
    secrets = {"token": SANDBOX_GITHUB_TOKEN}

    @classmethod
    def for_sandbox(cls, *, clock: Callable[[], datetime] | None = None, seed: int = 0) -> GitHubFake:
        if clock is None:
            return cls(seed=seed)
        app_clock = clock
        return cls(seed=seed, clock=lambda: app_clock().timestamp())

    def connector_config(self) -> list[str]:
        return ["repositories = [" + ", ".join(f'"{r}"' for r, _ in GITHUB_REPOSITORIES) + "]"]

    def playground_config(self) -> list[str]:
        # The fake enforces no secondary limit unless asked to: no need to
        # space mutating requests by GitHub's one second.
        return ["mutation_interval = 0"]

    def describe(self, url: str) -> str:
        return f"{url}  (Authorization: Bearer {SANDBOX_GITHUB_TOKEN})"

    def __init__(
        self,
        *,
        seed: int = 0,
        tokens: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit: int = RATE_LIMIT,
    ):
        super().__init__(seed=seed)
        self.tokens = dict(tokens or {SANDBOX_GITHUB_TOKEN: SANDBOX_GITHUB_LOGIN})
        self._clock = clock
        self._last = 0
        self.repos: dict[str, FakeRepo] = {}  # lower-case full name -> repo
        self.issues: dict[int, FakeIssue] = {}
        self.comments_by_id: dict[int, FakeComment] = {}
        self.moved: dict[tuple[str, int], int] = {}  # (old repo lower, old number) -> issue id
        self.deleted: set[tuple[str, int]] = set()
        self.rate_limit = rate_limit
        self.rate_remaining = rate_limit
        self.rate_reset = int(clock()) + 3600
        self.secondary_pending = 0
        self.secondary_retry_after: int | None = 60
        self._ids = 1000
        for method, pattern, handler in (
            ("GET", "/user", self._get_user),
            ("GET", "/repos/{owner}/{repo}", self._get_repo),
            ("GET", "/repos/{owner}/{repo}/labels", self._list_labels),
            ("GET", "/repositories/{repo_id}/labels", self._list_labels),
            ("GET", "/repos/{owner}/{repo}/issues", self._list_issues),
            ("GET", "/repositories/{repo_id}/issues", self._list_issues),
            ("POST", "/repos/{owner}/{repo}/issues", self._create_issue),
            ("GET", "/repos/{owner}/{repo}/issues/comments", self._list_repo_comments),
            ("GET", "/repositories/{repo_id}/issues/comments", self._list_repo_comments),
            ("GET", "/repos/{owner}/{repo}/issues/{number}", self._get_issue),
            ("GET", "/repositories/{repo_id}/issues/{number}", self._get_issue),
            ("PATCH", "/repos/{owner}/{repo}/issues/{number}", self._update_issue),
            ("GET", "/repos/{owner}/{repo}/issues/{number}/comments", self._list_comments),
            ("GET", "/repositories/{repo_id}/issues/{number}/comments", self._list_comments),
            ("POST", "/repos/{owner}/{repo}/issues/{number}/comments", self._create_comment),
            ("POST", "/repositories/{repo_id}/issues/{number}/comments", self._create_comment),
            ("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._get_comment),
            ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._update_comment),
            ("POST", "/graphql", self._graphql),
        ):
            self.route(method, pattern, self._guarded(handler))

    # -- people -------------------------------------------------------------------

    def create_repo(self, full_name: str, *, private: bool = False) -> FakeRepo:
        owner, name = full_name.split("/", 1)
        now = self.now()
        repo = FakeRepo(self._new_id(), owner, name, "private" if private else "public", now, now)
        with self.lock:
            self.repos[full_name.lower()] = repo
        return repo

    def set_visibility(self, repo: str | FakeRepo, visibility: str) -> FakeRepo:
        if visibility not in ("public", "private", "internal"):
            raise ValueError(f"visibility {visibility!r}: public, private or internal")
        r = self._repo_obj(repo)
        with self.lock:
            r.visibility = visibility
            r.updated = self.now()
        return r

    def create_label(self, repo: str | FakeRepo, name: str) -> None:
        r = self._repo_obj(repo)
        with self.lock:
            r.labels.setdefault(name.lower(), name)

    def disable_issues(self, repo: str | FakeRepo) -> None:
        """Turn the repository's issues off: creating one answers 410, as GitHub does."""
        r = self._repo_obj(repo)
        with self.lock:
            r.has_issues = False

    def issues_in(self, repo: str | FakeRepo) -> list[FakeIssue]:
        r = self._repo_obj(repo)
        with self.lock:
            return sorted((i for i in self.issues.values() if i.repo is r), key=lambda i: i.number)

    def create_issue(
        self,
        repo: str | FakeRepo,
        title: str,
        body: str = "",
        *,
        user: str = "octocat",
        assignee: str | None = None,
        labels: tuple[str, ...] = (),
        pull_request: bool = False,
    ) -> FakeIssue:
        """A new issue; its labels join the repository's (existing spellings win, case aside)."""
        r = self._repo_obj(repo)
        with self.lock:
            now = self.now()
            names = []
            for name in labels:
                name = r.labels.setdefault(name.lower(), name)
                if name not in names:
                    names.append(name)
            issue = FakeIssue(
                self._new_id(),
                r,
                r.next_number,
                title,
                body,
                user,
                now,
                now,
                assignees=[assignee] if assignee else [],
                labels=names,
                pull_request=pull_request,
            )
            r.next_number += 1
            self.issues[issue.id] = issue
        return issue

    def close(self, issue: int | FakeIssue, reason: str = "completed") -> FakeIssue:
        if reason not in ("completed", "not_planned", "duplicate"):
            raise ValueError(f"close reason {reason!r}: completed, not_planned or duplicate")
        i = self._issue_obj(issue)
        with self.lock:
            i.state, i.state_reason = "closed", reason
            i.closed = i.updated = self.now()
        return i

    def reopen(self, issue: int | FakeIssue) -> FakeIssue:
        i = self._issue_obj(issue)
        with self.lock:
            i.state, i.state_reason, i.closed = "open", "reopened", None
            i.updated = self.now()
        return i

    def assign(self, issue: int | FakeIssue, login: str | None) -> FakeIssue:
        i = self._issue_obj(issue)
        with self.lock:
            i.assignees = [login] if login else []
            i.updated = self.now()
        return i

    def comment(self, issue: int | FakeIssue, body: str, *, user: str = "octocat") -> FakeComment:
        i = self._issue_obj(issue)
        with self.lock:
            return self._add_comment(i, body, user)

    def edit_comment(self, comment: int | FakeComment, body: str, *, user: str = "octocat") -> FakeComment:
        """A person edits a comment in the web UI (anyone with write access may edit anyone's comment):
        its body and ``updated_at`` change, its author does not; the issue's ``updated_at`` stays."""
        c = comment if isinstance(comment, FakeComment) else self.comments_by_id[comment]
        with self.lock:
            c.body, c.updated, c.editor = body, self.now(), user
        return c

    def delete_comment(self, comment: int | FakeComment) -> None:
        """A person deletes a comment in the web UI: gone for good (its address answers 404),
        and no longer in any comment list; the issue's ``updated_at`` stays."""
        c = comment if isinstance(comment, FakeComment) else self.comments_by_id[comment]
        with self.lock:
            del self.comments_by_id[c.id]
            if c.issue_id in self.issues:
                self.issues[c.issue_id].comment_ids.remove(c.id)

    def edit_issue_body(self, issue: int | FakeIssue, body: str, *, user: str = "octocat") -> FakeIssue:
        """A person edits the issue's description in the web UI."""
        i = self._issue_obj(issue)
        with self.lock:
            i.body, i.updated, i.editor = body, self.now(), user
            i.edited = i.updated
        return i

    def transfer(self, issue: int | FakeIssue, to_repo: str | FakeRepo) -> FakeIssue:
        """Move the issue: same id, a new number; the old address answers 301."""
        i = self._issue_obj(issue)
        target = self._repo_obj(to_repo)
        with self.lock:
            self.moved[(i.repo.full_name.lower(), i.number)] = i.id
            i.repo, i.number = target, target.next_number
            target.next_number += 1
            i.updated = self.now()
        return i

    def delete(self, issue: int | FakeIssue) -> None:
        """Delete for good: the address answers 410."""
        i = self._issue_obj(issue)
        with self.lock:
            self.deleted.add((i.repo.full_name.lower(), i.number))
            del self.issues[i.id]
            for cid in i.comment_ids:
                self.comments_by_id.pop(cid, None)

    def secondary_limit(self, count: int = 1, retry_after: int | None = 60) -> None:
        """The next ``count`` requests answer 403 as GitHub's secondary limit does, with
        ``retry-after`` (None: without, as GitHub also answers; the budget is not spent)."""
        with self.lock:
            self.secondary_pending = count
            self.secondary_retry_after = retry_after

    def comments_of(self, issue: int | FakeIssue) -> list[FakeComment]:
        i = self._issue_obj(issue)
        return [self.comments_by_id[c] for c in i.comment_ids]

    # -- clock and ids ------------------------------------------------------------

    def now(self) -> int:
        """Whole seconds of the clock, never going back."""
        with self.lock:
            self._last = max(self._last, int(self._clock()))
            return self._last

    def _new_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def _repo_obj(self, repo: str | FakeRepo) -> FakeRepo:
        return repo if isinstance(repo, FakeRepo) else self.repos[repo.lower()]

    def _issue_obj(self, issue: int | FakeIssue) -> FakeIssue:
        return issue if isinstance(issue, FakeIssue) else self.issues[issue]

    def _add_comment(self, issue: FakeIssue, body: str, user: str) -> FakeComment:
        now = self.now()
        c = FakeComment(self._new_id(), issue.id, body, user, now, now)
        self.comments_by_id[c.id] = c
        issue.comment_ids.append(c.id)
        issue.updated = now
        return c

    # -- JSON shapes --------------------------------------------------------------

    def _api(self) -> str:
        return self.base_url

    def user_json(self, login: str) -> dict:
        uid = int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)
        api = self._api()
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": f"{api}/users/{login}",
            "html_url": f"{self.base_url}/{login}",
            "followers_url": f"{api}/users/{login}/followers",
            "following_url": f"{api}/users/{login}/following{{/other_user}}",
            "gists_url": f"{api}/users/{login}/gists{{/gist_id}}",
            "starred_url": f"{api}/users/{login}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/users/{login}/subscriptions",
            "organizations_url": f"{api}/users/{login}/orgs",
            "repos_url": f"{api}/users/{login}/repos",
            "events_url": f"{api}/users/{login}/events{{/privacy}}",
            "received_events_url": f"{api}/users/{login}/received_events",
            "type": "Bot" if login.endswith("-bot") or login.endswith("[bot]") else "User",
            "site_admin": False,
        }

    def repo_json(self, r: FakeRepo) -> dict:
        api = self._api()
        return {
            "id": r.id,
            "node_id": node_id("R", r.id),
            "name": r.name,
            "full_name": r.full_name,
            "private": r.visibility != "public",
            "visibility": r.visibility,
            "owner": self.user_json(r.owner),
            "html_url": f"{self.base_url}/{r.full_name}",
            "url": f"{api}/repos/{r.full_name}",
            "issues_url": f"{api}/repos/{r.full_name}/issues{{/number}}",
            "has_issues": r.has_issues,
            "archived": False,
            "disabled": False,
            "created_at": iso(r.created),
            "updated_at": iso(r.updated),
            "pushed_at": iso(r.updated),
            "open_issues_count": sum(1 for i in self.issues.values() if i.repo is r and i.state == "open"),
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    # -- the connector exam (connectors/testing.py) --------------------------------------

    EXAM_REPOSITORY = "exam/app"

    def exam_config(self) -> dict[str, Any]:
        if self.EXAM_REPOSITORY not in self.repos:
            self.create_repo(self.EXAM_REPOSITORY, private=True)
        return {
            "token": next(iter(sorted(self.tokens))),
            "repositories": [self.EXAM_REPOSITORY],
            "mutation_interval": 0,
            "backfill_days": 1,
        }

    def exam_bad_credentials(self) -> dict[str, Any]:
        return {"token": "not-a-sandbox-token"}

    def exam_create(self, title: str) -> str:
        self.exam_config()
        return str(self.create_issue(self.EXAM_REPOSITORY, title, f"{title}: it does not work").id)

    def exam_missing(self) -> str:
        return "999999999"

    def exam_delete(self, record_id: str) -> None:
        self.delete(next(i for i in self.issues.values() if str(i.id) == record_id))

    def issue_json(self, i: FakeIssue) -> dict:
        api, full = self._api(), i.repo.full_name
        url = f"{api}/repos/{full}/issues/{i.number}"
        kind = "pull" if i.pull_request else "issues"
        assignees = [self.user_json(a) for a in i.assignees]
        out = {
            "url": url,
            "repository_url": f"{api}/repos/{full}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.base_url}/{full}/{kind}/{i.number}",
            "id": i.id,
            "node_id": node_id("I", i.id),
            "number": i.number,
            "title": i.title,
            "user": self.user_json(i.user),
            "labels": [
                {
                    "id": int(hashlib.sha256(name.encode()).hexdigest()[:7], 16),
                    "name": name,
                    "color": "ededed",
                    "default": False,
                    "url": f"{api}/repos/{full}/labels/{name}",
                }
                for name in i.labels
            ],
            "state": i.state,
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": len(i.comment_ids),
            "created_at": iso(i.created),
            "updated_at": iso(i.updated),
            "closed_at": iso(i.closed) if i.closed else None,
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": i.body or None,
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": i.state_reason,
        }
        if i.pull_request:
            out["pull_request"] = {
                "url": f"{api}/repos/{full}/pulls/{i.number}",
                "html_url": f"{self.base_url}/{full}/pull/{i.number}",
                "diff_url": f"{self.base_url}/{full}/pull/{i.number}.diff",
                "patch_url": f"{self.base_url}/{full}/pull/{i.number}.patch",
                "merged_at": None,
            }
        return out

    def comment_json(self, c: FakeComment) -> dict:
        i = self.issues[c.issue_id]
        api, full = self._api(), i.repo.full_name
        return {
            "id": c.id,
            "node_id": node_id("IC", c.id),
            "url": f"{api}/repos/{full}/issues/comments/{c.id}",
            "html_url": f"{self.base_url}/{full}/issues/{i.number}#issuecomment-{c.id}",
            "body": c.body,
            "user": self.user_json(c.user),
            "created_at": iso(c.created),
            "updated_at": iso(c.updated),
            "issue_url": f"{api}/repos/{full}/issues/{i.number}",
            "author_association": "MEMBER",
            "performed_via_github_app": None,
        }

    # -- plumbing -----------------------------------------------------------------

    def _guarded(self, handler: Callable[[FakeRequest, str], FakeResponse]) -> Callable[[FakeRequest], FakeResponse]:
        """Auth, rate limits, ETags and rate headers around a route handler."""

        def serve(request: FakeRequest) -> FakeResponse:
            try:
                login = self._authenticate(request)
                self._spend(request)
                response = handler(request, login)
            except HttpFault as fault:
                response = fault.response
            if request.method == "GET" and response.status == 200:
                etag = 'W/"' + hashlib.sha256(json.dumps(response.body, sort_keys=True).encode()).hexdigest()[:32] + '"'
                response.headers["ETag"] = etag
                if request.headers.get("if-none-match") == etag:
                    self.rate_remaining += 1  # a 304 is free
                    response = FakeResponse(304, None, {"ETag": etag})
            response.headers.update(self._rate_headers())
            return response

        return serve

    def _authenticate(self, request: FakeRequest) -> str:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() in ("bearer", "token") and token in self.tokens:
            return self.tokens[token]
        raise gh_error(401, "Bad credentials")

    def _spend(self, request: FakeRequest) -> None:
        now = int(self._clock())
        if now >= self.rate_reset:
            self.rate_remaining, self.rate_reset = self.rate_limit, now + 3600
        if self.secondary_pending > 0:
            self.secondary_pending -= 1
            wait = self.secondary_retry_after
            raise gh_error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                headers={"retry-after": str(wait)} if wait is not None else None,
            )
        if self.rate_remaining <= 0:
            raise gh_error(403, "API rate limit exceeded for user.")
        self.rate_remaining -= 1

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(0, self.rate_remaining)),
            "x-ratelimit-reset": str(self.rate_reset),
            "x-ratelimit-used": str(self.rate_limit - max(0, self.rate_remaining)),
            "x-ratelimit-resource": "core",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
        }

    def _find_repo(self, request: FakeRequest) -> FakeRepo:
        p = request.params
        if "repo_id" in p:
            for repo in self.repos.values():
                if str(repo.id) == p["repo_id"]:
                    return repo
        else:
            named = self.repos.get(f"{p['owner']}/{p['repo']}".lower())
            if named is not None:
                return named
        raise gh_error(404, "Not Found")

    def _find_issue(self, request: FakeRequest) -> FakeIssue:
        repo = self._find_repo(request)
        try:
            number = int(request.params["number"])
        except ValueError:
            raise gh_error(404, "Not Found") from None
        for issue in self.issues.values():
            if issue.repo is repo and issue.number == number:
                return issue
        key = (repo.full_name.lower(), number)
        if key in self.deleted:
            raise gh_error(410, "This issue was deleted")
        if key in self.moved and self.moved[key] in self.issues:
            moved = self.issues[self.moved[key]]
            suffix = request.path.split(f"/issues/{number}", 1)[1]
            location = f"{self._api()}/repositories/{moved.repo.id}/issues/{moved.number}{suffix}"
            raise HttpFault(
                301,
                {"message": "Moved Permanently", "url": location, "documentation_url": DOCS},
                {"Location": location},
            )
        raise gh_error(404, "Not Found")

    def _body(self, request: FakeRequest) -> dict:
        try:
            body = request.json()
        except ValueError:
            raise gh_error(400, "Problems parsing JSON") from None
        if not isinstance(body, dict):
            raise gh_error(400, "Problems parsing JSON")
        return body

    # -- routes -------------------------------------------------------------------

    def _get_user(self, request: FakeRequest, login: str) -> FakeResponse:
        return FakeResponse(200, self.user_json(login))

    def _get_repo(self, request: FakeRequest, login: str) -> FakeResponse:
        return FakeResponse(200, self.repo_json(self._find_repo(request)))

    def _list_issues(self, request: FakeRequest, login: str) -> FakeResponse:
        repo = self._find_repo(request)
        state = request.arg("state", "open")
        sort = request.arg("sort", "created")
        direction = request.arg("direction", "desc")
        if (
            state not in ("open", "closed", "all")
            or sort not in ("created", "updated", "comments")
            or direction not in ("asc", "desc")
        ):
            raise gh_error(422, "Validation Failed")
        try:
            per_page = min(100, max(1, int(request.arg("per_page", "30"))))
            page = max(1, int(request.arg("page", "1")))
        except ValueError:
            raise gh_error(422, "Validation Failed") from None
        creator = request.arg("creator")
        since = request.arg("since")
        since_ts = None
        if since:
            try:
                since_ts = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise gh_error(422, "Validation Failed") from None
        items = [
            i
            for i in self.issues.values()
            if i.repo is repo
            and (state == "all" or i.state == state)
            and (creator is None or i.user.lower() == creator.lower())
            and (since_ts is None or i.updated >= since_ts)
        ]
        keys = {
            "created": lambda i: (i.created, i.id),
            "updated": lambda i: (i.updated, i.id),
            "comments": lambda i: (len(i.comment_ids), i.id),
        }
        items.sort(key=keys[sort], reverse=direction == "desc")
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        links = self._links(repo, request, page, last)
        if links:
            headers["Link"] = links
        return FakeResponse(200, [self.shaped(self.issue_json(i)) for i in chunk], headers)

    def _links(self, repo: FakeRepo, request: FakeRequest, page: int, last: int, what: str = "issues") -> str:
        base = {k: v[0] for k, v in request.query.items() if k != "page"}

        def url(n: int) -> str:
            return f"{self._api()}/repositories/{repo.id}/{what}?" + urlencode({**base, "page": n})

        rels = []
        if page > 1:
            rels += [(url(page - 1), "prev")]
        if page < last:
            rels += [(url(page + 1), "next"), (url(last), "last")]
        if page > 1:
            rels += [(url(1), "first")]
        return ", ".join(f'<{u}>; rel="{rel}"' for u, rel in rels)

    def _list_labels(self, request: FakeRequest, login: str) -> FakeResponse:
        repo = self._find_repo(request)
        try:
            per_page = min(100, max(1, int(request.arg("per_page", "30"))))
            page = max(1, int(request.arg("page", "1")))
        except ValueError:
            raise gh_error(422, "Validation Failed") from None
        names = sorted(repo.labels.values(), key=str.lower)
        last = max(1, -(-len(names) // per_page))
        chunk = names[(page - 1) * per_page : page * per_page]
        headers = {}
        links = self._links(repo, request, page, last, "labels")
        if links:
            headers["Link"] = links
        return FakeResponse(200, [self.label_json(repo, n) for n in chunk], headers)

    def label_json(self, repo: FakeRepo, name: str) -> dict:
        ident = int(hashlib.sha256(f"{repo.id}/{name}".encode()).hexdigest()[:7], 16)
        return {
            "id": ident,
            "node_id": node_id("LA", ident),
            "url": f"{self._api()}/repos/{repo.full_name}/labels/{name}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def _create_issue(self, request: FakeRequest, login: str) -> FakeResponse:
        repo = self._find_repo(request)
        body = self._body(request)
        title = body.get("title")
        if isinstance(title, int) and not isinstance(title, bool):
            title = str(title)
        labels = body.get("labels", [])
        if (
            not isinstance(title, str)
            or not title.strip()
            or len(title) > 256
            or not isinstance(body.get("body", ""), (str, type(None)))
            or not isinstance(labels, list)
            or not all(isinstance(x, str) or isinstance(x, dict) and isinstance(x.get("name"), str) for x in labels)
            or not isinstance(body.get("assignees", []), list)
        ):
            raise gh_error(422, "Validation Failed")
        if not repo.has_issues:
            raise gh_error(410, "Issues are disabled for this repo")
        names = tuple(x if isinstance(x, str) else x["name"] for x in labels)
        issue = self.create_issue(
            repo, title, body.get("body") or "", user=login, assignee=(body.get("assignees") or [None])[0], labels=names
        )
        return FakeResponse(201, self.issue_json(issue))

    def _get_issue(self, request: FakeRequest, login: str) -> FakeResponse:
        return FakeResponse(200, self.issue_json(self._find_issue(request)))

    def _update_issue(self, request: FakeRequest, login: str) -> FakeResponse:
        issue = self._find_issue(request)
        body = self._body(request)
        state = body.get("state")
        if state not in (None, "open", "closed"):
            raise gh_error(422, "Validation Failed")
        if "title" in body or "body" in body:
            issue.editor, issue.edited = login, self.now()
        if "title" in body:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = body["body"] or ""
        if "assignees" in body:
            issue.assignees = list(body["assignees"] or [])
        if "labels" in body:
            issue.labels = [str(x) for x in body["labels"] or []]
        if state == "closed" and issue.state != "closed":
            issue.state, issue.state_reason = "closed", body.get("state_reason") or "completed"
            issue.closed = self.now()
        elif state == "open" and issue.state != "open":
            issue.state, issue.state_reason, issue.closed = "open", "reopened", None
        issue.updated = self.now()
        return FakeResponse(200, self.issue_json(issue))

    def _list_comments(self, request: FakeRequest, login: str) -> FakeResponse:
        issue = self._find_issue(request)
        try:
            per_page = min(100, max(1, int(request.arg("per_page", "30"))))
            page = max(1, int(request.arg("page", "1")))
        except ValueError:
            raise gh_error(422, "Validation Failed") from None
        comments = [self.comments_by_id[c] for c in issue.comment_ids]
        last = max(1, -(-len(comments) // per_page))
        chunk = comments[(page - 1) * per_page : page * per_page]
        headers = {}
        if page < last:
            base = {k: v[0] for k, v in request.query.items() if k != "page"}
            nxt = f"{self._api()}/repositories/{issue.repo.id}/issues/{issue.number}/comments?" + urlencode(
                {**base, "page": page + 1}
            )
            headers["Link"] = f'<{nxt}>; rel="next"'
        return FakeResponse(200, [self.comment_json(c) for c in chunk], headers)

    def _list_repo_comments(self, request: FakeRequest, login: str) -> FakeResponse:
        """The repository's issue comments: by id, or with ``sort`` by created or updated; ``since``
        keeps those updated at or after it."""
        repo = self._find_repo(request)
        sort = request.arg("sort")
        direction = request.arg("direction", "asc")
        if sort not in (None, "created", "updated") or direction not in ("asc", "desc"):
            raise gh_error(422, "Validation Failed")
        try:
            per_page = min(100, max(1, int(request.arg("per_page", "30"))))
            page = max(1, int(request.arg("page", "1")))
            since = request.arg("since")
            since_ts = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() if since else None
        except ValueError:
            raise gh_error(422, "Validation Failed") from None
        with self.lock:
            comments = [
                c
                for c in self.comments_by_id.values()
                if self.issues[c.issue_id].repo is repo and (since_ts is None or c.updated >= since_ts)
            ]
        if sort is None:
            comments.sort(key=lambda c: c.id)
        else:
            field = "created" if sort == "created" else "updated"
            comments.sort(key=lambda c: (getattr(c, field), c.id), reverse=direction == "desc")
        last = max(1, -(-len(comments) // per_page))
        chunk = comments[(page - 1) * per_page : page * per_page]
        headers = {}
        links = self._links(repo, request, page, last, "issues/comments")
        if links:
            headers["Link"] = links
        return FakeResponse(200, [self.comment_json(c) for c in chunk], headers)

    def _create_comment(self, request: FakeRequest, login: str) -> FakeResponse:
        issue = self._find_issue(request)
        body = self._body(request)
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise gh_error(422, "Validation Failed")
        return FakeResponse(201, self.comment_json(self._add_comment(issue, body["body"], login)))

    def _find_comment(self, request: FakeRequest) -> FakeComment:
        repo = self._find_repo(request)
        try:
            comment = self.comments_by_id[int(request.params["comment_id"])]
        except (KeyError, ValueError):
            raise gh_error(404, "Not Found") from None
        issue = self.issues[comment.issue_id]
        if issue.repo is not repo:
            location = f"{self._api()}/repos/{issue.repo.full_name}/issues/comments/{comment.id}"
            raise HttpFault(
                301,
                {"message": "Moved Permanently", "url": location, "documentation_url": DOCS},
                {"Location": location},
            )
        return comment

    def _get_comment(self, request: FakeRequest, login: str) -> FakeResponse:
        return FakeResponse(200, self.comment_json(self._find_comment(request)))

    def _graphql(self, request: FakeRequest, login: str) -> FakeResponse:
        """The one GraphQL question syncd asks: ``nodes(ids:)`` with ``editor { login }`` and
        ``lastEditedAt`` of issue comments and issues. Anything else answers GitHub's error shape."""
        body = self._body(request)
        query, ids = body.get("query"), (body.get("variables") or {}).get("ids")
        if not isinstance(query, str) or "nodes(ids:" not in query.replace(" ", "") or not isinstance(ids, list):
            return FakeResponse(200, {"errors": [{"message": "this sandbox answers only nodes(ids:) editor queries"}]})
        nodes: list[dict | None] = []
        with self.lock:
            for ident in ids:
                found = None
                for c in self.comments_by_id.values():
                    if node_id("IC", c.id) == ident:
                        found = {
                            "id": ident,
                            "editor": self.user_json(c.editor) if c.editor else None,
                            "lastEditedAt": iso(c.updated) if c.editor else None,
                        }
                for i in self.issues.values():
                    if node_id("I", i.id) == ident:
                        found = {
                            "id": ident,
                            "editor": self.user_json(i.editor) if i.editor else None,
                            "lastEditedAt": iso(i.edited) if i.edited else None,
                        }
                nodes.append(found)
        return FakeResponse(200, {"data": {"nodes": nodes}})

    def _update_comment(self, request: FakeRequest, login: str) -> FakeResponse:
        comment = self._find_comment(request)
        body = self._body(request)
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise gh_error(422, "Validation Failed")
        if comment.user != login:
            raise gh_error(403, "Must have admin rights to Repository.")
        comment.body, comment.editor = body["body"], login
        comment.updated = self.now()  # editing a comment leaves the issue's updated_at alone
        return FakeResponse(200, self.comment_json(comment))


__all__ = [
    "SANDBOX_GITHUB_LOGIN",
    "SANDBOX_GITHUB_TOKEN",
    "GitHubFake",
    "FakeRepo",
    "FakeIssue",
    "FakeComment",
    "gh_error",
]
