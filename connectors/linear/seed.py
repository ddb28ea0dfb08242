"""Linear's part of the sandbox world: the product team's issues (teams ENG and APP), the engineers' acts.

The helpdesk's seeded tickets already name some of these issues, so Linear is
seeded first (``linked_from_seed``) and is in every sandbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

import requests

from connectors.linear.fake import SANDBOX_TEAMS, LinearFake
from syncd.sandbox.seed import ENGINEERS, World, engineer_email
from syncd.sandbox.world import IssueView, TrackerWorld, back_dated

TEAM_NAMES = ("Engineering", "Apps")

ISSUES = [
    # key, team, title, state, assignee, priority, description
    (
        "sso",
        "ENG",
        "SSO redirect loop when the IdP session has expired",
        "In Progress",
        "Ada Novak",
        1,
        "Users bounce between /login and the IdP when their Okta session expired but our session cookie "
        "survived. The callback sees a stale state parameter and restarts the flow.",
    ),
    (
        "csv",
        "ENG",
        "Report CSV export exceeds the 30 s gateway timeout",
        "Todo",
        "Ravi Patel",
        2,
        "Exports over ~50k rows are built synchronously in the request. Move them to a background job and "
        "email a download link.",
    ),
    (
        "webhook",
        "ENG",
        "Webhook retry policy ignores 410 Gone",
        "Backlog",
        None,
        3,
        "A 410 from the receiver should disable the endpoint, not retry with backoff for 72 hours.",
    ),
    (
        "patch500",
        "ENG",
        "PATCH /shipments returns 500 when notes is an empty string",
        "In Review",
        "Lena Fischer",
        2,
        "Validation casts '' to None after the NOT NULL check. Fix and add a regression test.",
    ),
    (
        "search",
        "ENG",
        "Search index lags uploads by up to an hour",
        "Triage",
        None,
        2,
        "The indexing queue is drained by a single worker; bursts of uploads back it up.",
    ),
    (
        "tz",
        "ENG",
        "Audit log export ignores the account time zone",
        "Done",
        "Ravi Patel",
        3,
        "Timestamps are rendered in UTC regardless of the account setting.",
    ),
    (
        "ratelimit",
        "ENG",
        "Public API rate limiter too strict for nightly batch clients",
        "Canceled",
        None,
        4,
        "Superseded by the per-key burst allowance shipped in 4.12.",
    ),
    (
        "android",
        "APP",
        "Android 14 crash when uploading photos (scoped storage)",
        "In Progress",
        "Sam Okafor",
        1,
        "READ_MEDIA_IMAGES is not requested on API 34; the picker returns a URI we cannot open.",
    ),
    (
        "safari",
        "APP",
        "Safari 17 renders blank dashboard charts",
        "Todo",
        None,
        3,
        "The chart library uses an OffscreenCanvas path that Safari 17.0 does not support.",
    ),
    (
        "archive",
        "APP",
        "Bulk archive for projects",
        "Backlog",
        "Lena Fischer",
        4,
        "Requested by several customers: select many projects and archive them at once.",
    ),
]


class LinearWorld(TrackerWorld):
    linked_from_seed = True
    story_role = "linked"
    fake: LinearFake

    def setup(self, world: World) -> None:
        linear, part = self.fake, world.result.trackers[self.kind]
        with back_dated(linear, world.start):
            for key, name in zip(SANDBOX_TEAMS, TEAM_NAMES):
                part.places[key] = linear.add_team(key, name)["id"]
            for name, local in ENGINEERS:
                part.people[name] = linear.add_user(name, engineer_email(local))["id"]
            for label in ("Bug", "Feature", "Customer"):
                linear.add_label(label)
        part.where = f"teams {', '.join(part.places)}"

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        linear, part, rng = self.fake, world.result.trackers[self.kind], world.rng
        engineers = list(part.people.values())
        for key, team, title, state, assignee, priority, description in ISSUES:
            with back_dated(linear, next(moments)):
                creator = engineers[rng.randrange(len(engineers))]
                issue = linear.create_issue(
                    team,
                    title,
                    description=description,
                    priority=priority,
                    creator=creator,
                    labels=["Feature"] if key == "archive" else ["Bug"],
                )
            with back_dated(linear, next(moments)):
                if assignee:
                    linear.assign(issue, part.people[assignee])
                if state != "Backlog":
                    linear.move_to_state(issue, state)
            part.issues[key] = issue["id"]
            part.keys[key] = linear.issue(issue["id"])["identifier"]

    # -- engineers, through the GraphQL API -----------------------------------------------------

    def engineer_key(self, engineer: str) -> str:
        """A personal API key for ``engineer`` (made on first use)."""
        key = "lin_api_" + "".join(c for c in engineer.lower() if c.isalnum()).ljust(32, "0")
        if key not in self.fake.api_keys:
            user = next(u for u in self.fake.users.values() if u["name"] == engineer)
            self.fake.add_api_key(key, user["id"])
        return key

    def graphql(self, query: str, variables: dict, *, engineer: str = "Ada Novak") -> dict:
        response = requests.post(
            f"{self.url}/graphql",
            timeout=10,
            json={"query": query, "variables": variables},
            headers={"Authorization": self.engineer_key(engineer)},
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Linear sandbox refused: {body['errors']}")
        return body["data"]

    def _update(self, key: str, update: dict, engineer: str) -> dict:
        issue = self.fake.issue(self.key(key))
        data = self.graphql(
            "mutation Move($id: String!, $input: IssueUpdateInput!) {"
            " issueUpdate(id: $id, input: $input) { success issue { identifier state { name } } } }",
            {"id": issue["id"], "input": update},
            engineer=engineer,
        )
        return data["issueUpdate"]["issue"]

    def engineer_move(self, identifier: str, state_name: str, *, engineer: str = "Ada Novak") -> dict:
        """An engineer moves an issue to another workflow state."""
        issue = self.fake.issue(self.key(identifier))
        state_id = self.fake.state_id(issue["team"]["key"], state_name)
        return self._update(identifier, {"stateId": state_id}, engineer)

    def move(self, key: str, state: str, *, by: str = "Ada Novak") -> dict:
        return self.engineer_move(key, state, engineer=by)

    def take(self, key: str, *, by: str) -> None:
        issue = self.fake.issue(self.key(key))
        user = next(u for u in self.fake.users.values() if u["name"] == by)
        state_id = self.fake.state_id(issue["team"]["key"], "In Progress")
        self._update(key, {"assigneeId": user["id"], "stateId": state_id}, by)

    def comment(self, key: str, body: str, *, by: str = "Ada Novak") -> str:
        """An engineer comments through the GraphQL API (``commentCreate``); returns the comment's id."""
        issue = self.fake.issue(self.key(key))
        data = self.graphql(
            "mutation Comment($input: CommentCreateInput!) { commentCreate(input: $input) { comment { id } } }",
            {"input": {"issueId": issue["id"], "body": body}},
            engineer=by,
        )
        return str(data["commentCreate"]["comment"]["id"])

    def delete_comment(self, comment_id: str) -> None:
        self.fake.delete_comment(comment_id)

    # -- what engineers see -------------------------------------------------------------------

    def view(self, key: str) -> IssueView:
        issue = self.fake.issue(self.key(key))
        return IssueView(
            id=issue["id"],
            key=issue["identifier"],
            title=issue["title"],
            state=issue["state"]["name"],
            url=issue["url"],
            description=issue["description"] or "",
            comments=[c["body"] for c in issue["comments"]],
            links=[f"attachment: {a['title']} ({a.get('subtitle') or ''}) {a['url']}" for a in issue["attachments"]],
            place=f"team {issue['team']['key']}",
        )
