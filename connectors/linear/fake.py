"""A fake of Linear's GraphQL API for the demo, end-to-end tests and benchmarks.

``POST /graphql`` executes real GraphQL documents (graphql-core) against
``schema.graphql``, a subset of Linear's official schema with the same
names and types, so a document the fake accepts is one Linear accepts too.
Semantics follow Linear's documentation: ``orderBy`` lists newest first,
``sort: [{updatedAt: {order: Ascending}}]`` oldest first, opaque cursors, a
default page of 50, ``issue(id:)`` taking a UUID or an identifier (also one
from before a team move), ``issueCreate`` taking a client-chosen UUID once and
only existing labels of the team or workspace, ``commentUpdate`` by the
comment's author only, ``attachmentCreate`` idempotent per (issue, url),
errors as an ``errors`` array with ``extensions.code``, a document above
10,000 complexity points refused, several aliased mutations in one document
run in order (one that fails nulls ``data`` and stops the rest, as the
mutations' payloads are non-null), and rate-limit headers on every response.

The helper methods (``create_issue``, ``move_to_state``, ...) act like people
in Linear's UI; they never go through HTTP and are not counted.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import uuid
from datetime import datetime, timedelta, timezone
from importlib import resources
from operator import itemgetter
from typing import Any, Callable, Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_ast_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.language import FragmentDefinitionNode, SelectionSetNode, VariableNode
from graphql.utilities import value_from_ast_untyped

from syncd.sandbox.server import FakeRequest, FakeResponse, FakeService

SANDBOX_API_KEY = "lin_api_sandbox0000000000000000000000000000"  # only the sandbox accepts it
SANDBOX_OAUTH_TOKEN = "lin_oauth_sandbox000000000000000000000000"
SANDBOX_TEAMS = ("ENG", "APP")  # the teams the sandbox seeds and syncd is configured for
DEFAULT_PAGE = 50
REQUESTS_PER_HOUR = 5000
COMPLEXITY_PER_HOUR = 250_000
MAX_QUERY_COMPLEXITY = 10_000  # Linear refuses a single document that costs more
WINDOW = timedelta(hours=1)
VALID_DOCUMENTS_KEPT = 64  # distinct query texts whose parsed, validated document is kept

STATE_TYPES = ("triage", "backlog", "unstarted", "started", "completed", "canceled")
PRIORITY_LABELS = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}

_sdl_cache: DocumentNode | None = None


def schema_text() -> str:
    return resources.files("connectors.linear").joinpath("schema.graphql").read_text()


def load_schema() -> GraphQLSchema:
    """A fresh copy of the sandbox's schema (each fake installs its own resolvers on it)."""
    global _sdl_cache
    if _sdl_cache is None:
        _sdl_cache = parse(schema_text())
    return build_ast_schema(_sdl_cache)


def iso_ms(dt: datetime) -> str:
    """Linear's timestamp form: UTC with milliseconds."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


def parse_date(value: str, now: datetime) -> datetime:
    """A ``DateTimeOrDuration``: ISO 8601 (or a bare year/date) or a duration from now."""
    text = str(value).strip()
    m = _DURATION.match(text)
    if m and text not in ("P", "-P"):
        delta = timedelta(
            weeks=int(m["w"] or 0),
            days=int(m["d"] or 0),
            hours=int(m["h"] or 0),
            minutes=int(m["m"] or 0),
            seconds=int(m["s"] or 0),
        )
        return now - delta if m["sign"] == "-" else now + delta
    if re.fullmatch(r"\d{4}", text):
        text = f"{text}-01-01"
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LinearError(f"Invalid date: {value!r}", "INVALID_INPUT", "invalid input") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class LinearError(GraphQLError):
    """A GraphQL error shaped the way Linear reports them."""

    def __init__(self, message: str, code: str, type_: str, *, user_message: str | None = None, status: int = 400):
        super().__init__(
            message,
            extensions={
                "type": type_,
                "code": code,
                "statusCode": status,
                "userError": True,
                "userPresentableMessage": user_message or message,
            },
        )


def not_found(kind: str) -> LinearError:
    return LinearError(
        f"Entity not found: {kind}", "INPUT_ERROR", "invalid input", user_message=f"Could not find referenced {kind}."
    )


def invalid(message: str) -> LinearError:
    return LinearError(message, "INPUT_ERROR", "invalid input")


# --- filters ---------------------------------------------------------------


def _compare(cmp: dict[str, Any], value: Any, convert: Callable[[Any], Any] = lambda v: v) -> bool:
    """Evaluate one Linear comparator (eq, in, gt, contains, null, ...) on a value."""
    for op, arg in cmp.items():
        if arg is None and op != "null":
            continue
        if op == "null":
            if (value is None) != bool(arg):
                return False
            continue
        if value is None:
            return False
        if op in ("in", "nin"):
            hit = value in [convert(a) for a in arg]
            if hit != (op == "in"):
                return False
            continue
        if op in ("eq", "neq", "gt", "gte", "lt", "lte"):
            other = convert(arg)
            ok = {
                "eq": value == other,
                "neq": value != other,
                "gt": value > other,
                "gte": value >= other,
                "lt": value < other,
                "lte": value <= other,
            }[op]
        else:
            text, arg_text = str(value), str(arg)
            ok = {
                "contains": arg_text in text,
                "containsIgnoreCase": arg_text.lower() in text.lower(),
                "notContains": arg_text not in text,
                "startsWith": text.startswith(arg_text),
                "endsWith": text.endswith(arg_text),
                "eqIgnoreCase": text.lower() == arg_text.lower(),
                "neqIgnoreCase": text.lower() != arg_text.lower(),
            }[op]
        if not ok:
            return False
    return True


class LinearFake(FakeService):
    """In-memory Linear workspace served over GraphQL."""

    name = "linear"
    default_port = 8802
    world = "connectors.linear.seed:LinearWorld"
    secrets = {"api_key": SANDBOX_API_KEY}

    def connector_config(self) -> list[str]:
        return ["teams = [" + ", ".join(f'"{t}"' for t in SANDBOX_TEAMS) + "]"]

    def playground_config(self) -> list[str]:
        return ['workspace = "sandbox"']

    def describe(self, url: str) -> str:
        return f"{url}/graphql  (Authorization: {SANDBOX_API_KEY})"

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        org_name: str = "Sandbox",
        url_key: str = "sandbox",
        web_url: str = "https://linear.app",
        requests_per_hour: int | None = None,
        complexity_per_hour: int | None = None,
        api_key: str = SANDBOX_API_KEY,
    ):
        super().__init__(seed=seed)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self.web_url = web_url.rstrip("/")
        self.requests_per_hour = requests_per_hour  # None: report headers, never refuse
        self.complexity_per_hour = complexity_per_hour
        self.schema = load_schema()
        self._uuid_rng_state = seed
        self.organization = {"id": self._uuid(), "name": org_name, "urlKey": url_key}
        self.users: dict[str, dict] = {}
        self.teams: dict[str, dict] = {}
        self.states: dict[str, dict] = {}
        self.labels: dict[str, dict] = {}
        self.issues: dict[str, dict] = {}
        self.comments: dict[str, dict] = {}
        self.attachments: dict[str, dict] = {}
        # Indexes over the two above (as Linear's own database has): an issue's comments and
        # attachments, and the attachments of a URL, without a scan of every one per lookup.
        self._comments_by_issue: dict[str, dict[str, None]] = {}
        self._attachments_by_issue: dict[str, dict[str, None]] = {}
        self._attachments_by_url: dict[str, dict[str, None]] = {}
        self._valid_documents: dict[str, DocumentNode] = {}  # query text -> its document (see _remember_valid)
        self.identifiers: dict[str, str] = {}  # every identifier an issue ever had -> id
        self.last_sync_id = 1000
        self.api_user = self.add_user("syncd", "syncd-bot@sandbox.example", admin=True)
        self.api_keys: dict[str, str] = {api_key: self.api_user["id"]}
        self.oauth_tokens: dict[str, str] = {SANDBOX_OAUTH_TOKEN: self.api_user["id"]}
        self._window_start: datetime | None = None
        self._window_requests = 0
        self._window_complexity = 0
        self._actor: str | None = None
        self.route("POST", "/graphql", self._graphql)
        self._install_resolvers()

    # -- ids and time -------------------------------------------------------------

    def _uuid(self) -> str:
        """Deterministic v4-shaped UUIDs, so seeded data is the same every run."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _now(self) -> str:
        return iso_ms(self.clock())

    def _sync(self) -> int:
        self.last_sync_id += 1
        return self.last_sync_id

    # -- people acting in the UI (not HTTP) -----------------------------------------

    def add_user(self, name: str, email: str, *, admin: bool = False, display_name: str | None = None) -> dict:
        with self.lock:
            now = self._now()
            user: dict[str, Any] = {
                "id": self._uuid(),
                "name": name,
                "displayName": display_name or name.split()[0].lower(),
                "email": email,
                "active": True,
                "admin": admin,
                "createdAt": now,
                "updatedAt": now,
            }
            self.users[user["id"]] = user
            return user

    def add_api_key(self, key: str, user: dict | str) -> None:
        with self.lock:
            self.api_keys[key] = self._user(user)["id"]

    def add_team(self, key: str, name: str, *, states: list[tuple[str, str]] | None = None) -> dict:
        """A team with workflow states given as (name, type); Linear's usual set by default."""
        states = states or [
            ("Triage", "triage"),
            ("Backlog", "backlog"),
            ("Todo", "unstarted"),
            ("In Progress", "started"),
            ("In Review", "started"),
            ("Done", "completed"),
            ("Canceled", "canceled"),
        ]
        colors = {
            "triage": "#FC7840",
            "backlog": "#bec2c8",
            "unstarted": "#e2e2e2",
            "started": "#f2c94c",
            "completed": "#5e6ad2",
            "canceled": "#95a2b3",
        }
        with self.lock:
            now = self._now()
            team: dict[str, Any] = {
                "id": self._uuid(),
                "key": key,
                "name": name,
                "createdAt": now,
                "updatedAt": now,
                "_next_number": 1,
            }
            self.teams[team["id"]] = team
            for position, (state_name, state_type) in enumerate(states):
                if state_type not in STATE_TYPES:
                    raise ValueError(f"state {state_name!r}: type must be one of {', '.join(STATE_TYPES)}")
                state: dict[str, Any] = {
                    "id": self._uuid(),
                    "name": state_name,
                    "type": state_type,
                    "color": colors[state_type],
                    "position": float(position),
                    "description": None,
                    "teamId": team["id"],
                    "createdAt": now,
                    "updatedAt": now,
                }
                self.states[state["id"]] = state
            return team

    def add_label(self, name: str, color: str = "#bec2c8", *, team: dict | str | None = None) -> dict:
        """A workspace label, or one of ``team``'s own labels."""
        with self.lock:
            label: dict[str, Any] = {
                "id": self._uuid(),
                "name": name,
                "color": color,
                "teamId": self._team(team)["id"] if team else None,
            }
            self.labels[label["id"]] = label
            return label

    def create_issue(
        self,
        team: dict | str,
        title: str,
        *,
        description: str | None = None,
        state: str | None = None,
        assignee: dict | str | None = None,
        priority: int = 0,
        labels: Sequence[str] = (),
        creator: dict | str | None = None,
    ) -> dict:
        """Create an issue as a person would; returns the stored issue."""
        with self.lock:
            team_obj = self._team(team)
            state_obj = self._state_named(team_obj, state) if state else self._default_state(team_obj)
            creator_obj = self._user(creator) if creator else None
            issue = self._new_issue(
                team_obj,
                title,
                description,
                state_obj,
                self._user(assignee)["id"] if assignee else None,
                priority,
                [self._label(name)["id"] for name in labels],
                creator_obj["id"] if creator_obj else None,
            )
            return issue

    def move_to_state(self, issue: dict | str, state_name: str) -> dict:
        with self.lock:
            obj = self._issue(issue)
            state = self._state_named(self.teams[obj["teamId"]], state_name)
            self._apply_issue_update(obj, {"stateId": state["id"]})
            return obj

    def assign(self, issue: dict | str, user: dict | str | None) -> dict:
        with self.lock:
            obj = self._issue(issue)
            self._apply_issue_update(obj, {"assigneeId": self._user(user)["id"] if user else None})
            return obj

    def move_team(self, issue: dict | str, team: dict | str) -> dict:
        """Move to another team: a new identifier, the same id; the old identifier still resolves."""
        with self.lock:
            obj = self._issue(issue)
            self._apply_issue_update(obj, {"teamId": self._team(team)["id"]})
            return obj

    def delete_issue(self, issue: dict | str, *, purge: bool = False) -> None:
        """Delete as a person does: into the trash (``trashed`` true, archived, still
        readable by id; left out of lists unless ``includeArchived``); ``purge``: gone
        for good (as after the trash's 30 days): ``Entity not found: Issue``."""
        with self.lock:
            obj = self._issue(issue)
            if purge:
                del self.issues[obj["id"]]
                for cid in self._comments_by_issue.pop(obj["id"], {}):
                    del self.comments[cid]
                return
            now = self._now()
            obj["trashed"] = True
            obj["archivedAt"] = now
            obj["updatedAt"] = now

    def add_comment(self, issue: dict | str, body: str, *, user: dict | str | None = None) -> dict:
        with self.lock:
            obj = self._issue(issue)
            author = self._user(user) if user else self.api_user
            return self._new_comment(obj, body, author["id"])

    def add_attachment(
        self, issue: dict | str, url: str, title: str, *, subtitle: str | None = None, user: dict | str | None = None
    ) -> dict:
        """A person attaching a link (e.g. a ticket URL) to an issue."""
        with self.lock:
            obj = self._issue(issue)
            creator = self._user(user) if user else None
            return self._upsert_attachment(obj, url, title, subtitle, None, None, creator["id"] if creator else None)

    def edit_comment(self, comment_id: str, body: str) -> dict:
        """A person rewriting a comment's text in the UI."""
        with self.lock:
            comment = self._comment(comment_id)
            self._edit_comment(comment, body)
            return comment

    def delete_comment(self, comment_id: str) -> None:
        with self.lock:
            comment = self._comment(comment_id)
            del self.comments[comment_id]
            self._comments_by_issue.get(comment["issueId"], {}).pop(comment_id, None)

    def issue(self, ref: str | dict) -> dict:
        """The issue (by id or any identifier it had) as a GraphQL-shaped dict."""
        with self.lock:
            obj = self._issue(ref)
            state = self.states[obj["stateId"]]
            return {
                **{k: v for k, v in obj.items() if not k.startswith("_")},
                "identifier": self._identifier(obj),
                "url": self._issue_url(obj),
                "state": {k: state[k] for k in ("id", "name", "type")},
                "team": {k: self.teams[obj["teamId"]][k] for k in ("id", "key", "name")},
                "assignee": copy.deepcopy(self.users.get(obj["assigneeId"])) if obj["assigneeId"] else None,
                "comments": [copy.deepcopy(c) for c in self._comments_of(obj["id"])],
                "attachments": [copy.deepcopy(a) for a in self._attachments_of(obj["id"])],
            }

    def state_id(self, team: dict | str, name: str) -> str:
        with self.lock:
            return self._state_named(self._team(team), name)["id"]

    # -- lookups --------------------------------------------------------------------

    def _user(self, ref: dict | str) -> dict:
        key = ref["id"] if isinstance(ref, dict) else ref
        if key in self.users:
            return self.users[key]
        for user in self.users.values():
            if key in (user["email"], user["name"], user["displayName"]):
                return user
        raise not_found("User")

    def _team(self, ref: dict | str) -> dict:
        key = ref["id"] if isinstance(ref, dict) else ref
        if key in self.teams:
            return self.teams[key]
        for team in self.teams.values():
            if key in (team["key"], team["name"]):
                return team
        raise not_found("Team")

    def _label(self, ref: str) -> dict:
        if ref in self.labels:
            return self.labels[ref]
        for label in self.labels.values():
            if label["name"] == ref:
                return label
        return self.add_label(ref)

    def _comment(self, comment_id: str) -> dict:
        if comment_id in self.comments:
            return self.comments[comment_id]
        raise not_found("Comment")

    def _issue(self, ref: dict | str) -> dict:
        key = ref["id"] if isinstance(ref, dict) else str(ref)
        if key in self.issues:
            return self.issues[key]
        issue_id = self.identifiers.get(key.upper())
        if issue_id and issue_id in self.issues:
            return self.issues[issue_id]
        raise not_found("Issue")

    def _state_named(self, team: dict, name: str) -> dict:
        for state in self.states.values():
            if state["teamId"] == team["id"] and state["name"].lower() == name.lower():
                return state
        raise not_found("WorkflowState")

    def _default_state(self, team: dict) -> dict:
        team_states = sorted(
            (s for s in self.states.values() if s["teamId"] == team["id"]), key=lambda s: s["position"]
        )
        for wanted in ("backlog", "unstarted", "triage"):
            for state in team_states:
                if state["type"] == wanted:
                    return state
        return team_states[0]

    def _identifier(self, issue: dict) -> str:
        return f"{self.teams[issue['teamId']]['key']}-{issue['number']}"

    def _issue_url(self, issue: dict) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", issue["title"].lower()).strip("-")[:60]
        return f"{self.web_url}/{self.organization['urlKey']}/issue/{self._identifier(issue)}/{slug}"

    # -- writes ---------------------------------------------------------------------

    def _new_issue(
        self,
        team: dict,
        title: str,
        description: str | None,
        state: dict,
        assignee_id: str | None,
        priority: int,
        label_ids: list[str],
        creator_id: str | None,
        issue_id: str | None = None,
    ) -> dict:
        now = self._now()
        number = team["_next_number"]
        team["_next_number"] += 1
        issue = {
            "id": issue_id or self._uuid(),
            "number": number,
            "teamId": team["id"],
            "title": title,
            "description": description,
            "priority": priority,
            "stateId": state["id"],
            "assigneeId": assignee_id,
            "creatorId": creator_id,
            "labelIds": list(label_ids),
            "createdAt": now,
            "updatedAt": now,
            "startedAt": None,
            "completedAt": None,
            "canceledAt": None,
            "archivedAt": None,
        }
        self._stamp_state(issue, state, now)
        self.issues[issue["id"]] = issue
        self.identifiers[self._identifier(issue)] = issue["id"]
        return issue

    def _stamp_state(self, issue: dict, state: dict, now: str) -> None:
        issue["startedAt"] = issue["startedAt"] or (now if state["type"] == "started" else None)
        issue["completedAt"] = now if state["type"] == "completed" else None
        issue["canceledAt"] = now if state["type"] == "canceled" else None

    def _apply_issue_update(self, issue: dict, changes: dict[str, Any]) -> None:
        now = self._now()
        if "teamId" in changes and changes["teamId"] and changes["teamId"] != issue["teamId"]:
            team = self._team(changes["teamId"])
            issue["teamId"] = team["id"]
            issue["number"] = team["_next_number"]
            team["_next_number"] += 1
            self.identifiers[self._identifier(issue)] = issue["id"]
            if "stateId" not in changes or not changes["stateId"]:
                # States are per team: keep the same kind of state in the new team.
                old_type = self.states[issue["stateId"]]["type"]
                candidates = [s for s in self.states.values() if s["teamId"] == team["id"] and s["type"] == old_type]
                new_state = candidates[0] if candidates else self._default_state(team)
                issue["stateId"] = new_state["id"]
        if changes.get("stateId"):
            state = self.states.get(changes["stateId"])
            if state is None:
                raise not_found("WorkflowState")
            if state["teamId"] != issue["teamId"]:
                raise invalid("The workflow state does not belong to the issue's team.")
            if state["id"] != issue["stateId"]:
                issue["stateId"] = state["id"]
                self._stamp_state(issue, state, now)
        if "assigneeId" in changes:
            if changes["assigneeId"] is not None and changes["assigneeId"] not in self.users:
                raise not_found("User")
            issue["assigneeId"] = changes["assigneeId"]
        for key in ("title", "description", "priority"):
            if key in changes and changes[key] is not None:
                issue[key] = changes[key]
        if changes.get("labelIds") is not None:
            issue["labelIds"] = [self._label(x)["id"] for x in changes["labelIds"]]
        issue["updatedAt"] = now

    def _new_comment(self, issue: dict, body: str, user_id: str | None, comment_id: str | None = None) -> dict:
        now = self._now()
        comment = {
            "id": comment_id or self._uuid(),
            "body": body,
            "issueId": issue["id"],
            "userId": user_id,
            "createdAt": now,
            "updatedAt": now,
            "editedAt": None,
        }
        self.comments[comment["id"]] = comment
        self._comments_by_issue.setdefault(issue["id"], {})[comment["id"]] = None
        issue["updatedAt"] = now
        return comment

    def _comments_of(self, issue_id: str) -> list[dict]:
        """The issue's comments, oldest first (the order they were made in)."""
        return [self.comments[c] for c in self._comments_by_issue.get(issue_id, ())]

    def _attachments_of(self, issue_id: str) -> list[dict]:
        return [self.attachments[a] for a in self._attachments_by_issue.get(issue_id, ())]

    def _edit_comment(self, comment: dict, body: str) -> None:
        """A new body for a comment (its issue's updatedAt is left as it was)."""
        now = self._now()
        comment["body"] = body
        comment["updatedAt"] = comment["editedAt"] = now

    def _upsert_attachment(
        self,
        issue: dict,
        url: str,
        title: str | None,
        subtitle: str | None,
        metadata: dict | None,
        group_by_source: bool | None,
        creator_id: str | None,
        attachment_id: str | None = None,
    ) -> dict:
        """Create, or update the attachment with the same URL on the same issue (Linear's rule)."""
        now = self._now()
        for existing in self._attachments_of(issue["id"]):
            if existing["url"] == url:
                if title is not None:
                    existing["title"] = title
                if subtitle is not None:
                    existing["subtitle"] = subtitle
                if metadata is not None:
                    existing["metadata"] = dict(metadata)
                if group_by_source is not None:
                    existing["groupBySource"] = group_by_source
                existing["updatedAt"] = now
                issue["updatedAt"] = now
                return existing
        attachment = {
            "id": attachment_id or self._uuid(),
            "issueId": issue["id"],
            "url": url,
            "title": title or url,
            "subtitle": subtitle,
            "metadata": dict(metadata or {}),
            "groupBySource": bool(group_by_source),
            "sourceType": None,
            "creatorId": creator_id,
            "createdAt": now,
            "updatedAt": now,
        }
        self.attachments[attachment["id"]] = attachment
        self._attachments_by_issue.setdefault(issue["id"], {})[attachment["id"]] = None
        self._attachments_by_url.setdefault(url, {})[attachment["id"]] = None
        issue["updatedAt"] = now
        return attachment

    # -- HTTP -----------------------------------------------------------------------

    def is_change(self, endpoint: str, request: FakeRequest) -> bool:
        """Only a mutation changes something (every GraphQL request is a POST)."""
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return False
        query = payload.get("query") if isinstance(payload, dict) else None
        return isinstance(query, str) and query.lstrip().startswith("mutation")

    def endpoint_name(self, request: FakeRequest, pattern: str) -> str:
        """``POST /graphql <operationName>``, or the first root field of an unnamed operation."""
        base = super().endpoint_name(request, pattern)
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return base
        if not isinstance(payload, dict):
            return base
        if isinstance(payload.get("operationName"), str) and payload["operationName"]:
            return f"{base} {payload['operationName']}"
        try:
            document = parse(payload.get("query") or "")
        except GraphQLError:
            return base
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if definition.name:
                    return f"{base} {definition.name.value}"
                for selection in definition.selection_set.selections:
                    if isinstance(selection, FieldNode):
                        return f"{base} {selection.name.value}"
        return base

    def _authenticate(self, request: FakeRequest) -> str | None:
        value = (request.headers.get("authorization") or "").strip()
        if value.lower().startswith("bearer "):
            return self.oauth_tokens.get(value[7:].strip())
        return self.api_keys.get(value)

    def _viewer(self) -> dict:
        assert self._actor is not None  # set while a request executes
        return self.users[self._actor]

    def _rate_headers(self, complexity: int) -> dict[str, str]:
        assert self._window_start is not None  # _graphql opens the window before anything is answered
        reset_ms = int((self._window_start + WINDOW).timestamp() * 1000)
        req_limit = self.requests_per_hour or REQUESTS_PER_HOUR
        cx_limit = self.complexity_per_hour or COMPLEXITY_PER_HOUR
        return {
            "X-RateLimit-Requests-Limit": str(req_limit),
            "X-RateLimit-Requests-Remaining": str(max(0, req_limit - self._window_requests)),
            "X-RateLimit-Requests-Reset": str(reset_ms),
            "X-RateLimit-Complexity-Limit": str(cx_limit),
            "X-RateLimit-Complexity-Remaining": str(max(0, cx_limit - self._window_complexity)),
            "X-RateLimit-Complexity-Reset": str(reset_ms),
            "X-Complexity": str(complexity),
        }

    def _spend(self, complexity: int) -> bool:
        """Charge one request; False when a configured budget is exhausted."""
        now = self.clock()
        if self._window_start is None or now >= self._window_start + WINDOW:
            self._window_start = now
            self._window_requests = 0
            self._window_complexity = 0
        over = (self.requests_per_hour is not None and self._window_requests >= self.requests_per_hour) or (
            self.complexity_per_hour is not None and self._window_complexity + complexity > self.complexity_per_hour
        )
        if not over:
            self._window_requests += 1
            self._window_complexity += complexity
        return not over

    @staticmethod
    def _errors(*errors: GraphQLError) -> dict:
        return {"errors": [e.formatted for e in errors]}

    def _graphql(self, request: FakeRequest) -> FakeResponse:
        if self._window_start is None:
            self._window_start = self.clock()
        user_id = self._authenticate(request)
        if user_id is None:
            error = LinearError(
                "Authentication required, not authenticated",
                "AUTHENTICATION_ERROR",
                "authentication error",
                status=401,
                user_message="You need to authenticate to access this operation.",
            )
            return FakeResponse(400, self._errors(error), self._rate_headers(0))
        try:
            payload = json.loads(request.body or b"")
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            error = LinearError("POST body must be JSON with a 'query' string", "BAD_USER_INPUT", "graphql error")
            return FakeResponse(400, self._errors(error), self._rate_headers(0))
        variables = payload.get("variables") or {}
        document = self._valid_documents.get(payload["query"])
        if document is None:
            try:
                document = parse(payload["query"])
            except GraphQLError as exc:
                exc.extensions = {"type": "graphql error", "code": "GRAPHQL_PARSE_FAILED", "userError": True}
                return FakeResponse(400, self._errors(exc), self._rate_headers(0))
            problems = validate(self.schema, document)
            if problems:
                for problem in problems:
                    problem.extensions = {
                        "type": "graphql error",
                        "code": "GRAPHQL_VALIDATION_FAILED",
                        "userError": True,
                    }
                return FakeResponse(400, self._errors(*problems), self._rate_headers(0))
            self._remember_valid(payload["query"], document)
        complexity = estimate_complexity(
            document, payload.get("operationName"), variables if isinstance(variables, dict) else {}
        )
        if complexity > MAX_QUERY_COMPLEXITY:
            error = LinearError(
                f"Query too complex: {complexity} points, at most {MAX_QUERY_COMPLEXITY}",
                "GRAPHQL_VALIDATION_FAILED",
                "graphql error",
                user_message="The query is too complex: ask for fewer records at once.",
            )
            return FakeResponse(400, self._errors(error), self._rate_headers(0))
        if not self._spend(complexity):
            error = LinearError(
                "Rate limit exceeded",
                "RATELIMITED",
                "ratelimited",
                user_message="Too many requests: wait before trying again.",
            )
            headers = self._rate_headers(complexity)
            headers["Retry-After"] = str(
                max(1, math.ceil((self._window_start + WINDOW - self.clock()).total_seconds()))
            )
            return FakeResponse(400, self._errors(error), headers)
        self._actor = user_id
        try:
            result = execute_sync(
                self.schema,
                document,
                root_value=self,
                variable_values=variables,
                operation_name=payload.get("operationName"),
            )
        finally:
            self._actor = None
        body: dict[str, Any] = {"data": self._shaped_tree(result.data) if self.malformed else result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        status = 400 if result.errors and result.data is None else 200
        return FakeResponse(status, body, self._rate_headers(complexity))

    def _remember_valid(self, query: str, document: DocumentNode) -> None:
        """A document that parsed and validated, kept for the next request with the same text
        (clients send the same few documents with new variables; parsing and validating
        them again was most of the sandbox's time in a large bench)."""
        if len(self._valid_documents) >= VALID_DOCUMENTS_KEPT:
            del self._valid_documents[next(iter(self._valid_documents))]
        self._valid_documents[query] = document

    def _shaped_tree(self, data: Any) -> Any:
        """The GraphQL answer with every record :meth:`malform` named in the wrong shape."""
        if isinstance(data, dict):
            if str(data.get("id")) in self.malformed:
                return self.shaped(data)
            return {k: self._shaped_tree(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self._shaped_tree(v) for v in data]
        return data

    # -- the connector exam (connectors/testing.py) --------------------------------------

    EXAM_TEAM = "EXM"

    def exam_config(self) -> dict[str, Any]:
        if not any(t["key"] == self.EXAM_TEAM for t in self.teams.values()):
            self.add_team(self.EXAM_TEAM, "Exam")
        return {"api_key": next(iter(self.api_keys)), "teams": [self.EXAM_TEAM], "backfill_days": 1}

    def exam_bad_credentials(self) -> dict[str, Any]:
        return {"api_key": "lin_api_not_a_sandbox_key"}

    def exam_create(self, title: str) -> str:
        self.exam_config()
        return self.create_issue(self.EXAM_TEAM, title, description=f"{title}: it does not work")["id"]

    def exam_missing(self) -> str:
        return "00000000-0000-4000-8000-00000000dead"

    def exam_delete(self, record_id: str) -> None:
        self.delete_issue(record_id, purge=True)

    # -- GraphQL resolvers ------------------------------------------------------------

    def _install_resolvers(self) -> None:
        types = self.schema.type_map
        resolvers: dict[tuple[str, str], Callable[..., Any]] = {
            ("Query", "issue"): lambda root, info, id: self._issue(id),
            ("Query", "issues"): lambda root, info, **a: self._connection(
                self._filtered(self.issues.values(), a.get("filter"), self._issue_filter),
                a,
                archived=lambda i: i["archivedAt"] is not None,
            ),
            ("Query", "viewer"): lambda root, info: self._viewer(),
            ("Query", "organization"): lambda root, info: self.organization,
            ("Query", "user"): lambda root, info, id: self._user(id),
            ("Query", "users"): lambda root, info, **a: self._connection(
                self._filtered(self.users.values(), a.get("filter"), self._user_filter), a
            ),
            ("Query", "team"): lambda root, info, id: self._team(id),
            ("Query", "teams"): lambda root, info, **a: self._connection(
                self._filtered(self.teams.values(), a.get("filter"), self._team_filter), a
            ),
            ("Query", "workflowStates"): lambda root, info, **a: self._connection(
                self._filtered(self.states.values(), a.get("filter"), self._state_filter), a
            ),
            ("Query", "comments"): lambda root, info, **a: self._connection(
                self._filtered(self.comments.values(), a.get("filter"), self._comment_filter), a
            ),
            ("Query", "comment"): self._q_comment,
            ("Query", "issueLabels"): lambda root, info, **a: self._connection(
                self._filtered(self.labels.values(), a.get("filter"), self._label_filter), a
            ),
            ("Query", "attachmentsForURL"): lambda root, info, url, **a: self._connection(
                [self.attachments[x] for x in self._attachments_by_url.get(url, ())], a
            ),
            ("Mutation", "commentCreate"): self._m_comment_create,
            ("Mutation", "commentUpdate"): self._m_comment_update,
            ("Mutation", "attachmentCreate"): self._m_attachment_create,
            ("Mutation", "attachmentLinkURL"): self._m_attachment_link_url,
            ("Mutation", "issueCreate"): self._m_issue_create,
            ("Mutation", "issueUpdate"): self._m_issue_update,
            ("User", "url"): lambda u, info: (
                f"{self.web_url}/{self.organization['urlKey']}/profiles/{u['displayName']}"
            ),
            ("User", "organization"): lambda u, info: self.organization,
            ("Team", "states"): lambda t, info, **a: self._connection(
                self._filtered(
                    [s for s in self.states.values() if s["teamId"] == t["id"]], a.get("filter"), self._state_filter
                ),
                a,
            ),
            ("Team", "issues"): lambda t, info, **a: self._connection(
                self._filtered(
                    [i for i in self.issues.values() if i["teamId"] == t["id"]], a.get("filter"), self._issue_filter
                ),
                a,
                archived=lambda i: i["archivedAt"] is not None,
            ),
            ("WorkflowState", "team"): lambda s, info: self.teams[s["teamId"]],
            ("Issue", "identifier"): lambda i, info: self._identifier(i),
            ("Issue", "url"): lambda i, info: self._issue_url(i),
            ("Issue", "priorityLabel"): lambda i, info: PRIORITY_LABELS.get(int(i["priority"]), "No priority"),
            ("Issue", "state"): lambda i, info: self.states[i["stateId"]],
            ("Issue", "team"): lambda i, info: self.teams[i["teamId"]],
            ("Issue", "assignee"): lambda i, info: self.users.get(i["assigneeId"]) if i["assigneeId"] else None,
            ("Issue", "creator"): lambda i, info: self.users.get(i["creatorId"]) if i["creatorId"] else None,
            ("Issue", "labels"): lambda i, info, **a: self._connection(
                self._filtered([self.labels[x] for x in i["labelIds"]], a.get("filter"), self._label_filter), a
            ),
            ("Issue", "comments"): lambda i, info, **a: self._connection(
                self._filtered(
                    self._comments_of(i["id"]),
                    a.get("filter"),
                    self._comment_filter,
                ),
                a,
            ),
            ("Issue", "attachments"): lambda i, info, **a: self._connection(
                self._filtered(
                    self._attachments_of(i["id"]),
                    a.get("filter"),
                    self._attachment_filter,
                ),
                a,
            ),
            ("IssueLabel", "team"): lambda x, info: self.teams.get(x["teamId"]) if x.get("teamId") else None,
            ("Comment", "url"): lambda c, info: f"{self._issue_url(self.issues[c['issueId']])}#comment-{c['id'][:8]}",
            ("Comment", "issue"): lambda c, info: self.issues.get(c["issueId"]),
            ("Comment", "user"): lambda c, info: self.users.get(c["userId"]) if c["userId"] else None,
            ("Attachment", "issue"): lambda x, info: self.issues[x["issueId"]],
            ("Attachment", "creator"): lambda x, info: self.users.get(x["creatorId"]) if x["creatorId"] else None,
        }
        for (type_name, field_name), fn in resolvers.items():
            owner = types[type_name]
            assert isinstance(owner, GraphQLObjectType), type_name  # resolvers are set on object types only
            owner.fields[field_name].resolve = fn

    # mutations

    def _m_comment_create(self, root: Any, info: Any, input: dict) -> dict:
        if not input.get("issueId"):
            raise invalid("issueId is required to comment on an issue.")
        if not input.get("body"):
            raise invalid("body is required.")
        issue = self._issue(input["issueId"])
        comment = self._new_comment(issue, input["body"], self._actor, input.get("id"))
        return {"success": True, "lastSyncId": float(self._sync()), "comment": comment}

    def _q_comment(self, root: Any, info: Any, id: str | None = None, hash: str | None = None) -> dict:
        if not id:
            raise invalid("Either id or hash is required to find a comment; the sandbox supports id.")
        return self._comment(id)

    def _m_comment_update(self, root: Any, info: Any, id: str, input: dict, skipEditedAt: bool | None = None) -> dict:
        comment = self._comment(id)
        if comment["userId"] != self._actor:
            raise LinearError("You can only edit your own comments.", "FORBIDDEN", "forbidden", status=403)
        if input.get("body") is not None:
            if not input["body"]:
                raise invalid("body must not be empty.")
            self._edit_comment(comment, input["body"])
        return {"success": True, "lastSyncId": float(self._sync()), "comment": comment}

    def _m_attachment_create(self, root: Any, info: Any, input: dict) -> dict:
        issue = self._issue(input["issueId"])
        attachment = self._upsert_attachment(
            issue,
            input["url"],
            input["title"],
            input.get("subtitle"),
            input.get("metadata"),
            input.get("groupBySource"),
            self._actor,
            input.get("id"),
        )
        if input.get("commentBody"):
            self._new_comment(issue, input["commentBody"], self._actor)
        return {"success": True, "lastSyncId": float(self._sync()), "attachment": attachment}

    def _m_attachment_link_url(
        self, root: Any, info: Any, issueId: str, url: str, title: str | None = None, id: str | None = None, **_: Any
    ) -> dict:
        issue = self._issue(issueId)
        attachment = self._upsert_attachment(issue, url, title, None, None, None, self._actor, id)
        return {"success": True, "lastSyncId": float(self._sync()), "attachment": attachment}

    def _m_issue_create(self, root: Any, info: Any, input: dict) -> dict:
        team = self._team(input["teamId"])
        if input.get("stateId"):
            state = self.states.get(input["stateId"])
            if state is None or state["teamId"] != team["id"]:
                raise not_found("WorkflowState")
        else:
            state = self._default_state(team)
        assignee = input.get("assigneeId")
        if assignee is not None and assignee not in self.users:
            raise not_found("User")
        issue_id = input.get("id")
        if issue_id is not None:
            try:
                if uuid.UUID(issue_id).version != 4:
                    raise ValueError
            except ValueError:
                raise invalid("id must be a UUID v4.") from None
            if issue_id in self.issues:
                raise invalid(f"An issue with id {issue_id} already exists.")
        label_ids = []
        for label_id in input.get("labelIds") or []:
            label = self.labels.get(label_id)
            if label is None:
                raise not_found("IssueLabel")
            if label.get("teamId") not in (None, team["id"]):
                raise invalid(f"Label {label['name']} belongs to another team.")
            label_ids.append(label_id)
        issue = self._new_issue(
            team,
            input.get("title") or "",
            input.get("description"),
            state,
            assignee,
            input.get("priority") or 0,
            label_ids,
            self._actor,
            issue_id,
        )
        return {"success": True, "lastSyncId": float(self._sync()), "issue": issue}

    def _m_issue_update(self, root: Any, info: Any, id: str, input: dict) -> dict:
        issue = self._issue(id)
        self._apply_issue_update(issue, input)
        return {"success": True, "lastSyncId": float(self._sync()), "issue": issue}

    # filters: each maps filter keys to a value getter (comparators) or a related entity (nested filters)

    def _filtered(self, items: Any, flt: dict | None, match: Callable[[dict, dict], bool]) -> list[dict]:
        items = list(items)
        return [x for x in items if match(x, flt)] if flt else items

    def _match(
        self,
        entity: dict | None,
        flt: dict | None,
        scalars: dict[str, Callable[[dict], Any]],
        relations: dict[str, tuple[Callable[[dict], dict | None], Callable]],
        dates: frozenset[str] = frozenset(),
        recurse: Callable[[dict | None, dict | None], bool] | None = None,
    ) -> bool:
        if not flt:
            return True
        if entity is None:
            return flt.get("null") is True
        for key, cond in flt.items():
            if cond is None:
                continue
            if key == "null":
                if cond:
                    return False
            elif key == "and":
                assert recurse is not None  # every filter passes itself
                if not all(recurse(entity, sub) for sub in cond):
                    return False
            elif key == "or":
                assert recurse is not None  # every filter passes itself
                if not any(recurse(entity, sub) for sub in cond):
                    return False
            elif key in relations:
                getter, matcher = relations[key]
                related = getter(entity)
                if related is None:
                    if cond.get("null") is not True:
                        return False
                elif not matcher(related, cond):
                    return False
            elif key in scalars:
                value = scalars[key](entity)
                if key in dates:
                    now = self.clock()
                    value = parse_date(value, now) if value else None
                    ok = _compare(cond, value, lambda v: parse_date(v, now))
                else:
                    ok = _compare(cond, value)
                if not ok:
                    return False
            else:
                raise invalid(f"Filtering on {key} is not supported by the sandbox.")
        return True

    def _issue_filter(self, issue: dict | None, flt: dict | None) -> bool:
        field = lambda k: lambda i: i[k]  # noqa: E731
        return self._match(
            issue,
            flt,
            {
                "id": field("id"),
                "createdAt": field("createdAt"),
                "updatedAt": field("updatedAt"),
                "completedAt": field("completedAt"),
                "canceledAt": field("canceledAt"),
                "number": field("number"),
                "title": field("title"),
                "priority": field("priority"),
            },
            {
                "team": (lambda i: self.teams[i["teamId"]], self._team_filter),
                "state": (lambda i: self.states[i["stateId"]], self._state_filter),
                "assignee": (lambda i: self.users.get(i["assigneeId"]) if i["assigneeId"] else None, self._user_filter),
            },
            frozenset({"createdAt", "updatedAt", "completedAt", "canceledAt"}),
            self._issue_filter,
        )

    def _team_filter(self, team: dict | None, flt: dict | None) -> bool:
        return self._match(team, flt, {k: itemgetter(k) for k in ("id", "key", "name")}, {}, recurse=self._team_filter)

    def _state_filter(self, state: dict | None, flt: dict | None) -> bool:
        return self._match(
            state,
            flt,
            {k: itemgetter(k) for k in ("id", "name", "type")},
            {"team": (lambda s: self.teams[s["teamId"]], self._team_filter)},
            recurse=self._state_filter,
        )

    def _user_filter(self, user: dict | None, flt: dict | None) -> bool:
        return self._match(
            user,
            flt,
            {**{k: itemgetter(k) for k in ("id", "email", "name", "displayName")}, "isMe": self._is_me},
            {},
            recurse=self._user_filter,
        )

    def _is_me(self, user: dict) -> bool:
        """``isMe``: the user is the one the request authenticated as."""
        return user["id"] == self._actor

    def _label_filter(self, label: dict | None, flt: dict | None) -> bool:
        return self._match(
            label,
            flt,
            {k: itemgetter(k) for k in ("id", "name")},
            {"team": (lambda x: self.teams.get(x["teamId"]) if x.get("teamId") else None, self._team_filter)},
            recurse=self._label_filter,
        )

    def _comment_filter(self, comment: dict | None, flt: dict | None) -> bool:
        return self._match(
            comment,
            flt,
            {k: itemgetter(k) for k in ("id", "body", "createdAt", "updatedAt")},
            {
                "issue": (lambda c: self.issues.get(c["issueId"]), self._issue_filter),
                "user": (lambda c: self.users.get(c["userId"]) if c["userId"] else None, self._user_filter),
            },
            frozenset({"createdAt", "updatedAt"}),
            self._comment_filter,
        )

    def _attachment_filter(self, attachment: dict | None, flt: dict | None) -> bool:
        return self._match(
            attachment,
            flt,
            {k: itemgetter(k) for k in ("id", "url", "title", "createdAt", "updatedAt")},
            {},
            frozenset({"createdAt", "updatedAt"}),
            self._attachment_filter,
        )

    # pagination

    def _connection(
        self, items: list[dict], args: dict[str, Any], archived: Callable[[dict], bool] | None = None
    ) -> dict:
        """A Relay connection over ``items`` with Linear's ordering and opaque keyset cursors."""
        if archived and not args.get("includeArchived"):
            items = [x for x in items if not archived(x)]
        field, descending = "createdAt", True
        if args.get("orderBy"):
            field = args["orderBy"]
        for sort in args.get("sort") or []:
            for sort_field, spec in sort.items():
                if spec is not None:
                    field = sort_field
                    descending = (spec.get("order") or "Descending") == "Descending"
                    break
            break
        if items and field not in items[0]:
            field = "createdAt" if "createdAt" in items[0] else "id"

        def key(x: dict) -> tuple:
            return (x.get(field) or "", x["id"])

        ordered = sorted(items, key=key, reverse=descending)

        def after(k: tuple, ck: tuple) -> bool:
            return k < ck if descending else k > ck

        first, last = args.get("first"), args.get("last")
        for name, value in (("first", first), ("last", last)):
            if value is not None and value < 0:
                raise invalid(f"{name} must be a positive number.")
        if args.get("after"):
            ck = decode_cursor(args["after"])
            ordered_slice = [x for x in ordered if after(key(x), ck)]
            has_previous = len(ordered_slice) < len(ordered)
        else:
            ordered_slice, has_previous = ordered, False
        has_next = False
        if args.get("before"):
            ck = decode_cursor(args["before"])
            kept = [x for x in ordered_slice if after(ck, key(x))]
            has_next = len(kept) < len(ordered_slice)
            ordered_slice = kept
        if first is None and last is None:
            first = DEFAULT_PAGE
        if first is not None:
            has_next = has_next or len(ordered_slice) > first
            ordered_slice = ordered_slice[:first]
        if last is not None:
            has_previous = has_previous or len(ordered_slice) > last
            ordered_slice = ordered_slice[-last:] if last else []
        edges = [{"cursor": encode_cursor(key(x)), "node": x} for x in ordered_slice]
        return {
            "nodes": ordered_slice,
            "edges": edges,
            "pageInfo": {
                "hasNextPage": has_next,
                "hasPreviousPage": has_previous,
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }


def encode_cursor(key: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError
        return tuple(value)
    except (ValueError, TypeError):
        raise invalid(f"Invalid cursor: {cursor[:40]!r}") from None


# --- complexity ------------------------------------------------------------------


def estimate_complexity(document: Any, operation_name: str | None, variables: dict[str, Any]) -> int:
    """Roughly Linear's scoring: 0.1 per scalar, 1 per object, connections times their page size."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    op = next(
        (o for o in operations if operation_name and o.name and o.name.value == operation_name),
        operations[0] if operations else None,
    )
    if op is None:
        return 0

    def arg_value(node: FieldNode, name: str) -> Any:
        for arg in node.arguments or ():
            if arg.name.value == name:
                if isinstance(arg.value, VariableNode):
                    return variables.get(arg.value.name.value)
                return value_from_ast_untyped(arg.value, variables)
        return None

    def cost(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> float:
        total = 0.0
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FieldNode):
                if sel.selection_set is None:
                    total += 0.1
                    continue
                inner = cost(sel.selection_set, seen)
                size = arg_value(sel, "first") or arg_value(sel, "last")
                is_connection = any(
                    isinstance(s, FieldNode) and s.name.value in ("nodes", "edges")
                    for s in sel.selection_set.selections
                )
                if is_connection:
                    total += 1 + inner * (size if isinstance(size, int) else DEFAULT_PAGE)
                else:
                    total += 1 + inner
            elif isinstance(sel, InlineFragmentNode):
                total += cost(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments and sel.name.value not in seen:
                total += cost(fragments[sel.name.value].selection_set, seen | {sel.name.value})
        return total

    return max(1, math.ceil(cost(op.selection_set, frozenset())))
