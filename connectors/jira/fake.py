"""A fake Jira Cloud (REST v3) for the demo, end-to-end tests and benchmarks.

It speaks the v3 wire format for what syncd uses: ``POST /rest/api/3/search/jql``
with a small JQL subset and ``nextPageToken``/``isLast`` paging, issues by
id or key (an old key still resolves after a move), comments with
properties, remote links upserted by ``globalId``, ``/myself``, HTTP Basic
auth, and 429 with ``Retry-After`` once a request budget is spent. The
withdrawn ``/rest/api/3/search`` answers 410 as Jira does.

Issues can be created through ``POST /rest/api/3/issue`` (project, summary,
issue type, ADF description, labels, priority and issue properties, each
checked the way Jira refuses them, including fields missing from a project's
create screen: :meth:`JiraFake.hide_create_field`); issue properties come back
from ``GET /issue`` and search when asked for. Comments can be read one by
one and edited (``PUT .../comment/{id}``, by their author only). Search can
lag behind writes like Jira's (``search_lag``): an issue created less than
that long ago is not found by JQL yet, though it reads by id or key.

JQL dates are read in the user's time zone (``user_time_zone``) to the
minute, like Jira; ``updated`` is sent with milliseconds and an offset in
that zone ("2026-11-21T13:00:00.000+0100"). Anything in a JQL query outside
the subset is refused with Jira's 400 error body, so a connector that
drifts from it notices.

People act through :meth:`create_issue`, :meth:`transition`, :meth:`assign`,
:meth:`move_project` and :meth:`comment`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, TypeGuard
from zoneinfo import ZoneInfo

from syncd.sandbox.server import FakeRequest, FakeResponse, FakeService, HttpFault

API = "/rest/api/3"
MAX_RESULTS = 100  # Jira's cap per page when fields are asked for
SANDBOX_EMAIL = "syncd@example.com"
SANDBOX_TOKEN = "sandbox-jira-token"
SANDBOX_OAUTH_TOKEN = "sandbox-jira-oauth-token"
JIRA_PROJECTS = [("PLAT", "Platform"), ("INFRA", "Infrastructure")]  # seeded; syncd is configured for them

# Workflow: status name -> (id, category key, category id, category name).
DEFAULT_STATUSES = {
    "To Do": ("10000", "new", 2, "To Do"),
    "In Progress": ("3", "indeterminate", 4, "In Progress"),
    "In Review": ("10001", "indeterminate", 4, "In Progress"),
    "Done": ("10002", "done", 3, "Done"),
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
ISSUE_TYPES = ("Bug", "Task", "Story", "Epic")
RESOLUTIONS = {"Done": "10000", "Won't Do": "10001", "Duplicate": "10002", "Cannot Reproduce": "10003"}


def jira_error(status: int, *messages: str, errors: dict[str, str] | None = None) -> HttpFault:
    """Jira's error body: ``{"errorMessages": [...], "errors": {...}}``."""
    return HttpFault(status, {"errorMessages": list(messages), "errors": errors or {}})


def plain_adf(text: str) -> dict:
    """A one-paragraph-per-line ADF document (the fake's own, for seeded text)."""
    content = [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.split("\n") if line]
    return {"type": "doc", "version": 1, "content": content}


@dataclass
class FakeUser:
    account_id: str
    display_name: str
    email: str
    account_type: str = "atlassian"  # "app" for an integration's account (a bot)

    def json(self, base: str, tz: str) -> dict:
        return {
            "self": f"{base}{API}/user?accountId={self.account_id}",
            "accountId": self.account_id,
            "emailAddress": self.email,
            "displayName": self.display_name,
            "active": True,
            "timeZone": tz,
            "accountType": self.account_type,
        }


@dataclass
class FakeIssue:
    id: str
    key: str
    project: str
    summary: str
    status: str
    created: datetime
    updated: datetime
    issuetype: str = "Bug"
    description: dict | None = None
    resolution: str | None = None
    assignee: FakeUser | None = None
    comments: list[dict] = field(default_factory=list)
    remotelinks: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    priority: str = "Medium"
    properties: dict[str, Any] = field(default_factory=dict)


class JqlError(ValueError):
    """A query outside the subset the fake understands (Jira answers 400)."""


@dataclass
class JqlQuery:
    projects: set[str] | None = None
    updated_from: datetime | None = None  # inclusive, aware
    updated_after: datetime | None = None  # exclusive, aware
    order_desc: bool = False
    order_by: str = "updated"


_TOKEN_RE = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=|>|<)|(?P<punct>[(),])|(?P<word>[A-Za-z0-9_\-/.:]+))'
)


def parse_jql(jql: str, tz: ZoneInfo, known_projects: set[str]) -> JqlQuery:
    """The subset syncd sends: ``project in (A, B)`` / ``project = A``,
    ``updated >= "yyyy/MM/dd HH:mm"`` (or ``>``, also ``yyyy-MM-dd``), joined by
    AND, then ``ORDER BY updated|created ASC|DESC``."""
    tokens = _tokenize(jql)
    query = JqlQuery()
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        pos += 1
        return tokens[pos - 1]

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    while (head := peek()) is not None and head.lower() != "order":
        name = take().lower()
        if name == "project":
            op = take().lower()
            if op == "in":
                if take() != "(":
                    raise JqlError("Error in the JQL Query: expecting '(' after 'in'.")
                keys = []
                while True:
                    keys.append(_unquote(take()))
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise JqlError(f"Error in the JQL Query: expecting ',' or ')' but got '{sep}'.")
            elif op == "=":
                keys = [_unquote(take())]
            else:
                raise JqlError(f"Error in the JQL Query: the operator '{op}' is not supported by this sandbox.")
            for key in keys:
                if key not in known_projects:
                    raise JqlError(f"The value '{key}' does not exist for the field 'project'.")
            query.projects = set(keys) if query.projects is None else query.projects & set(keys)
        elif name == "updated":
            op = take()
            when = _jql_time(_unquote(take()), tz)
            if op == ">=":
                query.updated_from = when
            elif op == ">":
                query.updated_after = when
            else:
                raise JqlError(f"Error in the JQL Query: the operator '{op}' is not supported by this sandbox.")
        else:
            raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
        nxt = peek()
        if nxt is not None and nxt.lower() == "and":
            take()
            if (after := peek()) is None or after.lower() == "order":
                raise JqlError("Error in the JQL Query: expecting a clause after 'AND'.")
        elif nxt is not None and nxt.lower() != "order":
            raise JqlError(f"Error in the JQL Query: expecting 'AND' or 'ORDER BY' but got '{nxt}'.")
    if peek() is not None:
        take()
        if (take() or "").lower() != "by":
            raise JqlError("Error in the JQL Query: expecting 'by' after 'order'.")
        query.order_by = take().lower()
        if query.order_by not in ("updated", "created"):
            raise JqlError("Error in the JQL Query: this sandbox orders by 'updated' or 'created' only.")
        direction = (take() if peek() is not None else "asc").lower()
        if direction not in ("asc", "desc"):
            raise JqlError(f"Error in the JQL Query: unknown order '{direction}'.")
        query.order_desc = direction == "desc"
        if peek() is not None:
            raise JqlError(f"Error in the JQL Query: unexpected '{peek()}' at the end.")
    return query


def _tokenize(jql: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(jql, pos)
        if not m or m.end() == pos:
            raise JqlError(
                f"Error in the JQL Query: the character '{jql[pos:].strip()[:1]}' is a reserved "
                f"JQL character (at position {pos})."
            )
        assert m.lastgroup is not None  # every alternative of _TOKEN_RE is a named group
        tokens.append(m.group(m.lastgroup).strip())
        pos = m.end()
    return tokens


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1].replace('\\"', '"')
    return token


def _jql_time(text: str, tz: ZoneInfo) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{text}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'."
    )


class JiraFake(FakeService):
    """A Jira Cloud site with a few projects, one workflow and real v3 shapes."""

    name = "jira"
    # Searches and batch reads sent by POST change nothing: no webhook for them.
    reads_by_post = ("/search/jql", "/bulkfetch")
    default_port = 8804
    world = "connectors.jira.seed:JiraWorld"
    secrets = {"api_token": SANDBOX_TOKEN}

    @classmethod
    def for_sandbox(cls, *, clock: Callable[[], datetime] | None = None, seed: int = 0) -> JiraFake:
        return cls(clock=clock, seed=seed, projects=dict(JIRA_PROJECTS))

    def connector_config(self) -> list[str]:
        return [f'email = "{SANDBOX_EMAIL}"', "projects = [" + ", ".join(f'"{k}"' for k, _ in JIRA_PROJECTS) + "]"]

    def describe(self, url: str) -> str:
        return f"{url}/rest/api/3  (Basic auth '{SANDBOX_EMAIL}' : '{SANDBOX_TOKEN}')"

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        email: str = SANDBOX_EMAIL,
        api_token: str = SANDBOX_TOKEN,
        user_time_zone: str = "UTC",
        projects: dict[str, str] | None = None,
        statuses: dict[str, tuple[str, str, int, str]] | None = None,
        budget: int | None = None,
        budget_window: float = 60.0,
        search_lag: float = 0.0,
    ):
        """``budget``: requests allowed per ``budget_window`` seconds (None: no limit);
        ``clock`` gives the time of every change and of the budget window;
        ``search_lag``: seconds before a new issue shows in JQL search."""
        super().__init__(seed=seed)
        self.email = email
        self.api_token = api_token
        self.oauth_tokens: set[str] = {SANDBOX_OAUTH_TOKEN}
        self.user_time_zone = user_time_zone
        self.statuses = dict(statuses or DEFAULT_STATUSES)
        self.projects: dict[str, str] = {}  # key -> id
        self.project_names: dict[str, str] = {}
        for key, pname in (projects or {"ENG": "Engineering", "OPS": "Operations"}).items():
            self.add_project(key, pname)
        self.issues: dict[str, FakeIssue] = {}
        self.keys: dict[str, str] = {}  # every key an issue ever had -> id
        self.next_number: dict[str, int] = {}
        self.users: dict[str, FakeUser] = {}
        self.me = self.add_user("syncd bot", email)
        self.budget = budget
        self.budget_window = budget_window
        self.search_lag = search_lag
        self.issue_types: dict[str, tuple[str, ...]] = {}  # project -> its types (default ISSUE_TYPES)
        self.hidden_create_fields: dict[str, set[str]] = {}  # project -> fields not on its create screen
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self._window_start: float | None = None
        self._window_used = 0
        self._next_id = 10000
        self._next_comment = 10000
        self._next_link = 10000
        for method in ("GET", "POST"):
            self.route(method, f"{API}/search", self._withdrawn_search)
        self.route("POST", f"{API}/search/jql", self._search_jql)
        self.route("GET", f"{API}/myself", self._myself)
        self.route("GET", f"{API}/project/{{projectIdOrKey}}", self._get_project)
        self.route("GET", f"{API}/issue/createmeta/{{projectIdOrKey}}/issuetypes", self._createmeta_issue_types)
        self.route("POST", f"{API}/issue", self._create_issue)
        self.route("POST", f"{API}/issue/bulkfetch", self._bulk_fetch)
        self.route("GET", f"{API}/issue/{{issueIdOrKey}}", self._get_issue)
        self.route("GET", f"{API}/issue/{{issueIdOrKey}}/comment", self._list_comments)
        self.route("POST", f"{API}/issue/{{issueIdOrKey}}/comment", self._add_comment)
        self.route("GET", f"{API}/issue/{{issueIdOrKey}}/comment/{{id}}", self._get_comment)
        self.route("PUT", f"{API}/issue/{{issueIdOrKey}}/comment/{{id}}", self._edit_comment)
        self.route("GET", f"{API}/issue/{{issueIdOrKey}}/remotelink", self._list_remotelinks)
        self.route("POST", f"{API}/issue/{{issueIdOrKey}}/remotelink", self._upsert_remotelink)

    # -- people's side -------------------------------------------------------------

    def add_project(self, key: str, name: str) -> None:
        with self.lock:
            self.projects[key] = str(10000 + len(self.projects))
            self.project_names[key] = name

    def add_user(self, name: str, email: str | None = None) -> FakeUser:
        with self.lock:
            user = FakeUser(
                f"5b10a2844c20165700ede{len(self.users):03d}",
                name,
                email or f"{name.lower().replace(' ', '.')}@example.com",
            )
            self.users[name] = user
            return user

    def create_issue(
        self,
        project: str,
        summary: str,
        *,
        description: str | None = None,
        status: str = "To Do",
        assignee: str | None = None,
        issuetype: str = "Bug",
        at: datetime | None = None,
        labels: list[str] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> FakeIssue:
        with self.lock:
            if project not in self.projects:
                raise KeyError(f"no project {project!r} in the Jira sandbox")
            self._check_status(status)
            when = self._stamp(at)
            ident = str(self._next_id)
            self._next_id += 1
            key = self._new_key(project)
            issue = FakeIssue(
                ident,
                key,
                project,
                summary,
                status,
                when,
                when,
                issuetype,
                plain_adf(description) if description else None,
            )
            if assignee:
                issue.assignee = self.users.get(assignee) or self.add_user(assignee)
            issue.labels = list(labels or [])
            issue.properties = dict(properties or {})
            self.issues[ident] = issue
            self.keys[key] = ident
            return issue

    def transition(
        self, issue: str | FakeIssue, status: str, *, resolution: str | None = None, at: datetime | None = None
    ) -> FakeIssue:
        with self.lock:
            found = self._resolve(issue)
            self._check_status(status)
            found.status = status
            if self.statuses[status][1] == "done":
                found.resolution = resolution or "Done"
            else:
                found.resolution = None
            found.updated = self._stamp(at)
            return found

    def assign(self, issue: str | FakeIssue, name: str | None, *, at: datetime | None = None) -> FakeIssue:
        with self.lock:
            found = self._resolve(issue)
            found.assignee = (self.users.get(name) or self.add_user(name)) if name else None
            found.updated = self._stamp(at)
            return found

    def move_project(self, issue: str | FakeIssue, project: str, *, at: datetime | None = None) -> FakeIssue:
        """Move to another project: a new key, the same id; the old key still resolves."""
        with self.lock:
            if project not in self.projects:
                raise KeyError(f"no project {project!r} in the Jira sandbox")
            found = self._resolve(issue)
            found.project = project
            found.key = self._new_key(project)
            self.keys[found.key] = found.id
            found.updated = self._stamp(at)
            return found

    def comment(
        self,
        issue: str | FakeIssue,
        text: str | dict,
        *,
        author: str | None = None,
        properties: list[dict] | None = None,
        at: datetime | None = None,
        visibility: dict | None = None,
    ) -> dict:
        """A person's comment; ``visibility`` ({"type": "role", "value": "Developers"}) restricts who reads it."""
        with self.lock:
            found = self._resolve(issue)
            user = (self.users.get(author) or self.add_user(author)) if author else self.me
            body = text if isinstance(text, dict) else plain_adf(text)
            comment = self._store_comment(found, body, user, properties or [], at)
            if visibility:
                comment["visibility"] = dict(visibility)
            return comment

    def delete_comment_as_person(self, comment_id: str) -> None:
        """A person deletes a comment: it is gone from every list; its issue's updated moves."""
        with self.lock:
            issue = next(i for i in self.issues.values() if any(c["id"] == comment_id for c in i.comments))
            issue.comments = [c for c in issue.comments if c["id"] != comment_id]
            issue.updated = self._stamp(None)

    def edit_comment_as_person(self, issue: str | FakeIssue, comment_id: str, text: str) -> dict:
        """A person edits their comment in the web UI: the body and both stamps change."""
        with self.lock:
            found = self._resolve(issue)
            comment = next(c for c in found.comments if c["id"] == comment_id)
            comment["body"] = plain_adf(text)
            comment["updated"] = self._stamp(None)
            found.updated = comment["updated"]
            return comment

    def get(self, issue: str) -> FakeIssue:
        with self.lock:
            return self._resolve(issue)

    def delete_issue(self, issue: str | FakeIssue) -> None:
        """Delete for good: its keys answer 404 from now on (a gap in the project's numbers)."""
        with self.lock:
            found = self._resolve(issue)
            del self.issues[found.id]

    def hide_create_field(self, project: str, name: str) -> None:
        """Take a field (labels, priority) off the project's create screen."""
        with self.lock:
            self.hidden_create_fields.setdefault(project, set()).add(name)

    def set_issue_types(self, project: str, names: tuple[str, ...]) -> None:
        with self.lock:
            self.issue_types[project] = tuple(names)

    def issues_with_property(self, key: str, value_key: str) -> list[FakeIssue]:
        """Issues whose property ``key`` holds ``{"key": value_key}`` (syncd's marker)."""
        with self.lock:
            return [
                i
                for i in self.issues.values()
                if isinstance(i.properties.get(key), dict) and i.properties[key].get("key") == value_key
            ]

    # -- helpers ------------------------------------------------------------------

    def _check_status(self, status: str) -> None:
        if status not in self.statuses:
            raise KeyError(f"no status {status!r} in the sandbox workflow ({', '.join(self.statuses)})")

    def _new_key(self, project: str) -> str:
        number = self.next_number.get(project, 0) + 1
        self.next_number[project] = number
        return f"{project}-{number}"

    def _stamp(self, at: datetime | None) -> datetime:
        when = (at or self.clock()).astimezone(timezone.utc)
        return when.replace(microsecond=when.microsecond // 1000 * 1000)

    def _resolve(self, issue: str | FakeIssue) -> FakeIssue:
        if isinstance(issue, FakeIssue):
            return issue
        ident = issue if issue in self.issues else self.keys.get(issue.upper())
        if ident is None or ident not in self.issues:
            raise KeyError(f"no issue {issue!r} in the Jira sandbox")
        return self.issues[ident]

    def _lookup(self, request: FakeRequest) -> FakeIssue:
        try:
            return self._resolve(request.params["issueIdOrKey"])
        except KeyError:
            raise jira_error(404, "Issue does not exist or you do not have permission to see it.") from None

    def _store_comment(
        self, issue: FakeIssue, body: dict, user: FakeUser, properties: list[dict], at: datetime | None
    ) -> dict:
        when = self._stamp(at)
        comment = {
            "id": str(self._next_comment),
            "body": body,
            "author": user,
            "created": when,
            "updated": when,
            "properties": [dict(p) for p in properties],
            "issue": issue.id,
        }
        self._next_comment += 1
        issue.comments.append(comment)
        issue.updated = when
        return comment

    def time(self, when: datetime) -> str:
        """Jira's timestamp form in the user's zone: 2026-11-21T13:00:00.000+0100."""
        local = when.astimezone(ZoneInfo(self.user_time_zone))
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")

    # -- wire format --------------------------------------------------------------

    # -- the connector exam (connectors/testing.py) --------------------------------------

    def exam_config(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "api_token": self.api_token,
            "projects": [next(iter(self.projects))],
            "backfill_days": 1,
        }

    def exam_bad_credentials(self) -> dict[str, Any]:
        return {"api_token": "not-a-sandbox-token"}

    def exam_create(self, title: str) -> str:
        return self.create_issue(next(iter(self.projects)), title).id

    def exam_missing(self) -> str:
        return "99999999"

    def exam_delete(self, record_id: str) -> None:
        self.delete_issue(record_id)

    def issue_json(self, issue: FakeIssue, fields: list[str] | None, properties: list[str] | None = None) -> dict:
        base = self.base_url
        tz = self.user_time_zone
        status_id, cat_key, cat_id, cat_name = self.statuses[issue.status]
        every = {
            "summary": issue.summary,
            "status": {
                "self": f"{base}{API}/status/{status_id}",
                "description": "",
                "iconUrl": f"{base}/",
                "name": issue.status,
                "id": status_id,
                "statusCategory": {
                    "self": f"{base}{API}/statuscategory/{cat_id}",
                    "id": cat_id,
                    "key": cat_key,
                    "colorName": "blue-gray",
                    "name": cat_name,
                },
            },
            "assignee": issue.assignee.json(base, tz) if issue.assignee else None,
            "updated": self.time(issue.updated),
            "created": self.time(issue.created),
            "resolution": (
                {
                    "self": f"{base}{API}/resolution/{RESOLUTIONS.get(issue.resolution, '1')}",
                    "id": RESOLUTIONS.get(issue.resolution, "1"),
                    "description": "",
                    "name": issue.resolution,
                }
                if issue.resolution
                else None
            ),
            "project": {
                "self": f"{base}{API}/project/{self.projects[issue.project]}",
                "id": self.projects[issue.project],
                "key": issue.project,
                "name": self.project_names[issue.project],
                "projectTypeKey": "software",
                "simplified": False,
            },
            "issuetype": {
                "self": f"{base}{API}/issuetype/10004",
                "id": "10004",
                "name": issue.issuetype,
                "subtask": False,
                "hierarchyLevel": 0,
            },
            "description": issue.description,
            "labels": list(issue.labels),
            # The search's comment field: the issue's comments, oldest first, as the comment API shows them.
            "comment": {
                "self": f"{base}{API}/issue/{issue.id}/comment",
                "comments": [
                    self.comment_json(issue, c, False) for c in sorted(issue.comments, key=lambda c: int(c["id"]))
                ],
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
            "priority": {
                "self": f"{base}{API}/priority/{PRIORITIES[issue.priority]}",
                "iconUrl": f"{base}/",
                "name": issue.priority,
                "id": PRIORITIES[issue.priority],
            },
        }
        if fields is None or "*all" in fields or "*navigable" in fields:
            chosen = every
        else:
            chosen = {name: every[name] for name in fields if name in every}
        out = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue.id,
            "self": f"{base}{API}/issue/{issue.id}",
            "key": issue.key,
            "fields": chosen,
        }
        if properties:
            out["properties"] = {k: issue.properties[k] for k in properties if k in issue.properties}
        return out

    def comment_json(self, issue: FakeIssue, comment: dict, with_properties: bool) -> dict:
        base = self.base_url
        user = comment["author"].json(base, self.user_time_zone)
        out = {
            "self": f"{base}{API}/issue/{issue.id}/comment/{comment['id']}",
            "id": comment["id"],
            "author": user,
            "body": comment["body"],
            "updateAuthor": user,
            "created": self.time(comment["created"]),
            "updated": self.time(comment["updated"]),
            "jsdPublic": True,
        }
        if comment.get("visibility"):
            out["visibility"] = dict(comment["visibility"])
        if with_properties:
            out["properties"] = [dict(p) for p in comment["properties"]]
        return out

    # -- routes -------------------------------------------------------------------

    def _guard(self, request: FakeRequest) -> dict[str, str]:
        """Auth, then the request budget. Returns rate-limit headers to send."""
        auth = request.headers.get("authorization", "")
        if not self._authorised(auth):
            raise jira_error(401, "You are not authenticated. Authentication required to perform this operation.")
        if self.budget is None:
            return {}
        now = self.clock().timestamp()
        if self._window_start is None or now - self._window_start >= self.budget_window:
            self._window_start, self._window_used = now, 0
        reset = self._window_start + self.budget_window
        if self._window_used >= self.budget:
            wait = max(1, int(reset - now + 0.999))
            fault = jira_error(429, "Rate limit exceeded.")
            fault.response.headers.update(
                {"Retry-After": str(wait), "X-RateLimit-Limit": str(self.budget), "X-RateLimit-Remaining": "0"}
            )
            raise fault
        self._window_used += 1
        return {"X-RateLimit-Limit": str(self.budget), "X-RateLimit-Remaining": str(self.budget - self._window_used)}

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() in self.oauth_tokens
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.email and password == self.api_token

    def _withdrawn_search(self, request: FakeRequest) -> FakeResponse:
        raise jira_error(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.")

    def _myself(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        return FakeResponse(200, self.me.json(self.base_url, self.user_time_zone), headers)

    def _project_of(self, request: FakeRequest) -> str:
        """The key of the project the path names (by key or id); 404 as Jira answers."""
        wanted = request.params["projectIdOrKey"]
        key = wanted if wanted in self.projects else next((k for k, v in self.projects.items() if v == wanted), None)
        if key is None:
            raise jira_error(404, f"No project could be found with key '{wanted}'.")
        return key

    def _issue_type_json(self, name: str, position: int) -> dict:
        type_id = str(10001 + position)
        return {
            "self": f"{self.base_url}{API}/issuetype/{type_id}",
            "id": type_id,
            "name": name,
            "description": f"A {name.lower()}.",
            "iconUrl": f"{self.base_url}/images/icons/issuetypes/{name.lower()}.svg",
            "subtask": False,
            "hierarchyLevel": 1 if name == "Epic" else 0,
        }

    def _get_project(self, request: FakeRequest) -> FakeResponse:
        """Get Project: the project with its issue types (no expand needed)."""
        headers = self._guard(request)
        key = self._project_of(request)
        project_id = self.projects[key]
        types = self.issue_types.get(key, ISSUE_TYPES)
        body = {
            "self": f"{self.base_url}{API}/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": self.project_names[key],
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
            "issueTypes": [self._issue_type_json(name, i) for i, name in enumerate(types)],
        }
        return FakeResponse(200, body, headers)

    def _createmeta_issue_types(self, request: FakeRequest) -> FakeResponse:
        """Get create metadata issue types for a project, a page at a time (startAt, maxResults)."""
        headers = self._guard(request)
        key = self._project_of(request)
        try:
            start = int(request.arg("startAt", "0"))
            size = int(request.arg("maxResults", "50"))
        except ValueError:
            raise jira_error(400, "startAt and maxResults must be integers.") from None
        if size > 200:
            raise jira_error(400, "Parameter 'maxResults' must not exceed the limit '200'")
        types = [self._issue_type_json(name, i) for i, name in enumerate(self.issue_types.get(key, ISSUE_TYPES))]
        page = types[start : start + size]
        return FakeResponse(
            200, {"issueTypes": page, "maxResults": size, "startAt": start, "total": len(types)}, headers
        )

    def _search_jql(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        body = _json_body(request)
        if not isinstance(body.get("jql"), str):
            raise jira_error(400, "Unbounded JQL queries are not allowed here. Please add a search restriction.")
        jql = body["jql"]
        tz = ZoneInfo(self.user_time_zone)
        try:
            query = parse_jql(jql, tz, set(self.projects))
        except JqlError as exc:
            raise jira_error(400, str(exc)) from None
        if query.projects is None and query.updated_from is None and query.updated_after is None:
            raise jira_error(400, "Unbounded JQL queries are not allowed here. Please add a search restriction.")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise jira_error(400, "'fields' must be a list of field names.")
        max_results = body.get("maxResults", 50)
        if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 0:
            raise jira_error(400, "'maxResults' must be a non-negative integer.")
        max_results = min(max_results, MAX_RESULTS)
        properties = body.get("properties")
        if properties is not None and (
            not isinstance(properties, list) or len(properties) > 5 or not all(isinstance(p, str) for p in properties)
        ):
            raise jira_error(400, "'properties' must be a list of at most 5 property keys.")
        after = self._read_token(body.get("nextPageToken"), jql)
        sort_key = self._created_key if query.order_by == "created" else self._sort_key
        matches = [i for i in self.issues.values() if self._matches(i, query) and self._indexed(i)]
        matches.sort(key=sort_key, reverse=query.order_desc)
        if after is not None:
            matches = [i for i in matches if (sort_key(i) < after if query.order_desc else sort_key(i) > after)]
        page = matches[:max_results]
        result: dict[str, Any] = {
            "issues": [self.shaped(self.issue_json(i, fields, properties)) for i in page],
            "isLast": len(page) == len(matches),
        }
        if len(page) < len(matches):
            result["nextPageToken"] = self._make_token(sort_key(page[-1]), jql)
        return FakeResponse(200, result, headers)

    @staticmethod
    def _sort_key(issue: FakeIssue) -> tuple[datetime, int]:
        return issue.updated, int(issue.id)

    def _indexed(self, issue: FakeIssue) -> bool:
        """Whether search shows the issue yet (``search_lag`` after its creation)."""
        return not self.search_lag or issue.created.timestamp() <= self.clock().timestamp() - self.search_lag

    @staticmethod
    def _created_key(issue: FakeIssue) -> tuple[datetime, int]:
        return issue.created, int(issue.id)

    @staticmethod
    def _matches(issue: FakeIssue, query: JqlQuery) -> bool:
        if query.projects is not None and issue.project not in query.projects:
            return False
        # The bound has minute precision; `updated` is compared in full.
        if query.updated_from is not None and issue.updated < query.updated_from:
            return False
        if query.updated_after is not None and issue.updated <= query.updated_after:
            return False
        return True

    # Page tokens name the last issue served (its sort position), not an
    # offset: an issue updated while a client pages moves to the end and
    # shifts nothing, so no issue is skipped.
    @staticmethod
    def _make_token(last: tuple[datetime, int], jql: str) -> str:
        digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
        data = {"u": last[0].isoformat(), "i": last[1], "q": digest}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()

    @staticmethod
    def _read_token(token: Any, jql: str) -> tuple[datetime, int] | None:
        if token in (None, ""):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            last, digest = (datetime.fromisoformat(data["u"]), int(data["i"])), data["q"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise jira_error(400, "The provided next page token is invalid or expired.") from None
        if digest != hashlib.sha256(jql.encode()).hexdigest()[:16]:
            raise jira_error(400, "The provided next page token is invalid or expired.")
        return last

    def _bulk_fetch(self, request: FakeRequest) -> FakeResponse:
        """``POST /issue/bulkfetch``: up to 100 ids or keys; issues that do not exist
        (or that the user may not see) are left out of ``issues``, not reported as
        errors; ``issueErrors`` is for issues Jira could not read this time."""
        headers = self._guard(request)
        body = _json_body(request)
        wanted = body.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise jira_error(400, "issueIdsOrKeys must be a list of issue ids or keys.")
        if len(wanted) > 100:
            raise jira_error(400, "You can request up to 100 issues.")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise jira_error(400, "'fields' must be a list of field names.")
        found: dict[str, FakeIssue] = {}
        for ref in wanted:
            try:
                issue = self._resolve(ref)
            except KeyError:
                continue
            found[issue.id] = issue
        issues = [self.issue_json(found[i], fields) for i in sorted(found, key=int)]
        return FakeResponse(200, {"expand": "", "issues": issues, "issueErrors": []}, headers)

    def _get_issue(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue = self._lookup(request)
        fields_arg = request.arg("fields")
        fields = [f.strip() for f in fields_arg.split(",") if f.strip()] if fields_arg else None
        props_arg = request.arg("properties")
        properties = [p.strip() for p in props_arg.split(",") if p.strip()] if props_arg else None
        return FakeResponse(200, self.issue_json(issue, fields, properties), headers)

    def _list_comments(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue = self._lookup(request)
        try:
            start = int(request.arg("startAt", "0"))
            max_results = min(int(request.arg("maxResults", "100")), 100)
        except ValueError:
            raise jira_error(400, "startAt and maxResults must be integers.") from None
        order = request.arg("orderBy", "created")
        if order not in ("created", "-created", "+created"):
            raise jira_error(400, f"Invalid orderBy value: {order}.")
        expand = {e.strip() for e in (request.arg("expand") or "").split(",")}
        comments = sorted(issue.comments, key=lambda c: (c["created"], int(c["id"])), reverse=order == "-created")
        page = comments[start : start + max_results]
        body = {
            "startAt": start,
            "maxResults": max_results,
            "total": len(comments),
            "comments": [self.comment_json(issue, c, "properties" in expand) for c in page],
        }
        return FakeResponse(200, body, headers)

    def _add_comment(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue = self._lookup(request)
        doc, properties = _comment_body(request)
        comment = self._store_comment(issue, doc, self.me, properties or [], None)
        return FakeResponse(201, self.comment_json(issue, comment, False), headers)

    def _find_comment(self, request: FakeRequest) -> tuple[FakeIssue, dict]:
        issue = self._lookup(request)
        ident = request.params["id"]
        for comment in issue.comments:
            if comment["id"] == ident:
                return issue, comment
        raise jira_error(404, f"Can not find a comment for the id: {ident}.")

    def _get_comment(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue, comment = self._find_comment(request)
        expand = {e.strip() for e in (request.arg("expand") or "").split(",")}
        return FakeResponse(200, self.comment_json(issue, comment, "properties" in expand), headers)

    def _edit_comment(self, request: FakeRequest) -> FakeResponse:
        """Replace the body; properties given are set (by key), others kept."""
        headers = self._guard(request)
        issue, comment = self._find_comment(request)
        if comment["author"] is not self.me:
            raise jira_error(403, "You do not have the permission to edit this comment.")
        doc, properties = _comment_body(request)
        comment["body"] = doc
        for prop in properties or []:
            comment["properties"] = [p for p in comment["properties"] if p["key"] != prop["key"]] + [dict(prop)]
        comment["updated"] = self._stamp(None)
        issue.updated = comment["updated"]
        expand = {e.strip() for e in (request.arg("expand") or "").split(",")}
        return FakeResponse(200, self.comment_json(issue, comment, "properties" in expand), headers)

    def _create_issue(self, request: FakeRequest) -> FakeResponse:
        """``POST /issue``: every field checked the way Jira refuses it, all at once."""
        headers = self._guard(request)
        body = _json_body(request)
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise jira_error(400, "Issue must have fields set.")
        errors: dict[str, str] = {}
        project = fields.get("project")
        key = project.get("key") if isinstance(project, dict) else None
        if isinstance(project, dict) and key is None and isinstance(project.get("id"), str):
            key = next((k for k, v in self.projects.items() if v == project["id"]), None)
        if key not in self.projects:
            errors["project"] = "valid project is required"
        hidden = self.hidden_create_fields.get(key, set()) if key is not None else set()
        for name in fields:
            if name in hidden or name not in ("project", "summary", "issuetype", "description", "labels", "priority"):
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255 or "\n" in summary:
            errors["summary"] = "Summary must be less than 255 characters and on one line."
        itype = fields.get("issuetype")
        type_name = itype.get("name") if isinstance(itype, dict) else None
        if not isinstance(itype, dict):
            errors["issuetype"] = "Specify an issue type"
        elif key in self.projects and type_name not in self.issue_types.get(key, ISSUE_TYPES):
            errors["issuetype"] = "Specify a valid issue type"
        description = fields.get("description")
        if description is not None and not _is_doc(description):
            errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        labels = fields.get("labels", [])
        if "labels" not in errors:
            if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
                errors["labels"] = "Labels must be a list of strings."
            else:
                for label in labels:
                    if re.search(r"\s", label) or len(label) > 255:
                        errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        priority = fields.get("priority")
        if priority is not None and "priority" not in errors:
            name = priority.get("name") if isinstance(priority, dict) else None
            if name not in PRIORITIES:
                errors["priority"] = f"Priority name '{name}' is not valid"
        properties = body.get("properties") or []
        if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in properties
        ):
            errors["properties"] = "Each property needs a key and a value."
        if errors:
            raise jira_error(400, errors=errors)
        # No errors: the project, summary and issue type are the strings checked above.
        assert isinstance(key, str) and isinstance(summary, str) and isinstance(type_name, str)
        issue = self.create_issue(
            key, summary, issuetype=type_name, labels=labels, properties={p["key"]: p["value"] for p in properties}
        )
        issue.description = description
        if priority is not None:
            issue.priority = priority["name"]
        return FakeResponse(
            201, {"id": issue.id, "key": issue.key, "self": f"{self.base_url}{API}/issue/{issue.id}"}, headers
        )

    def _list_remotelinks(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue = self._lookup(request)
        global_id = request.arg("globalId")
        links = [self._link_json(issue, link) for link in issue.remotelinks]
        if global_id is not None:
            match = [link for link in links if link.get("globalId") == global_id]
            if not match:
                raise jira_error(404, "No remote link with the given globalId was found on this issue.")
            return FakeResponse(200, match[0], headers)
        return FakeResponse(200, links, headers)

    def _upsert_remotelink(self, request: FakeRequest) -> FakeResponse:
        headers = self._guard(request)
        issue = self._lookup(request)
        body = _json_body(request)
        obj = body.get("object")
        if not isinstance(obj, dict):
            raise jira_error(400, errors={"object": "'object' is required."})
        for name in ("url", "title"):
            if not isinstance(obj.get(name), str) or not obj[name]:
                raise jira_error(400, errors={name: f"'{name}' is required."})
        global_id = body.get("globalId")
        if global_id is not None and (not isinstance(global_id, str) or len(global_id) > 255):
            raise jira_error(400, errors={"globalId": "The globalId must be a string of at most 255 characters."})
        stored = {k: v for k, v in body.items() if k in ("globalId", "application", "relationship", "object")}
        if global_id is not None:
            for link in issue.remotelinks:
                if link.get("globalId") == global_id:
                    link_id = link["id"]
                    link.clear()
                    link.update(stored, id=link_id)
                    return FakeResponse(200, self._ids(issue, link), headers)
        stored["id"] = self._next_link
        self._next_link += 1
        issue.remotelinks.append(stored)
        return FakeResponse(201, self._ids(issue, stored), headers)

    def _ids(self, issue: FakeIssue, link: dict) -> dict:
        return {"id": link["id"], "self": f"{self.base_url}{API}/issue/{issue.key}/remotelink/{link['id']}"}

    def _link_json(self, issue: FakeIssue, link: dict) -> dict:
        return {**{k: v for k, v in link.items() if k != "id"}, **self._ids(issue, link)}


def _is_doc(doc: Any) -> TypeGuard[dict]:
    return (
        isinstance(doc, dict)
        and doc.get("type") == "doc"
        and doc.get("version") == 1
        and isinstance(doc.get("content"), list)
    )


def _comment_body(request: FakeRequest) -> tuple[dict, list[dict] | None]:
    """A comment write's ADF body and properties, or Jira's 400."""
    body = _json_body(request)
    doc = body.get("body")
    if not _is_doc(doc):
        raise jira_error(400, errors={"comment": "Comment body is not valid!"})
    properties = body.get("properties")
    if properties is not None and (
        not isinstance(properties, list)
        or not all(isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in properties)
    ):
        raise jira_error(400, errors={"properties": "Each property needs a key and a value."})
    return doc, properties


def _json_body(request: FakeRequest) -> dict:
    """The request's JSON object (empty when the body is another JSON value), or Jira's 400 when it is not JSON."""
    try:
        body = request.json()
    except ValueError:
        raise jira_error(400, "The request body is not valid JSON.") from None
    return body if isinstance(body, dict) else {}
