"""Jira's part of the sandbox world: the projects PLAT and INFRA, with issues in every status category.

Keys chosen not to collide with Linear's ENG and APP, so a pasted key names
one tracker only. No seeded ticket names a Jira issue: the demo and the
tests make those links the way agents do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from connectors.jira.fake import JIRA_PROJECTS, FakeIssue, JiraFake
from syncd.sandbox.seed import ENGINEERS, World, engineer_email
from syncd.sandbox.world import IssueView, TrackerWorld

JIRA_ISSUES = [
    # key, project, summary, status, assignee, resolution (for done), description
    (
        "gdpr",
        "PLAT",
        "GDPR export omits uploaded attachments",
        "In Progress",
        "Lena Fischer",
        None,
        "The export job reads records from the database but never walks the object store.",
    ),
    (
        "saml",
        "PLAT",
        "SAML signing certificate rotation needs a restart to take effect",
        "To Do",
        "Ada Novak",
        None,
        "The IdP metadata is cached for the life of the process.",
    ),
    (
        "digest",
        "PLAT",
        "Weekly report e-mail sent twice after the DST change",
        "In Review",
        "Ravi Patel",
        None,
        "The scheduler fires at 01:30 local time, which happened twice.",
    ),
    (
        "pg16",
        "PLAT",
        "Upgrade the primary database to PostgreSQL 16",
        "Done",
        "Sam Okafor",
        "Done",
        "Done in the October maintenance window.",
    ),
    (
        "tenantkeys",
        "PLAT",
        "Per-tenant encryption keys for the EU region",
        "Done",
        None,
        "Won't Do",
        "Replaced by the regional KMS rollout.",
    ),
    (
        "backups",
        "INFRA",
        "Nightly backup verification job times out",
        "In Progress",
        "Sam Okafor",
        None,
        "Verification restores the whole database; sample instead.",
    ),
]


class JiraWorld(TrackerWorld):
    story_role = "second"
    fake: JiraFake

    def setup(self, world: World) -> None:
        part = world.result.trackers[self.kind]
        for key, name in JIRA_PROJECTS:
            if key not in self.fake.projects:
                self.fake.add_project(key, name)
            part.places[key] = name
        for name, local in ENGINEERS:
            if name not in self.fake.users:
                self.fake.add_user(name, engineer_email(local))
            part.people[name] = name
        part.where = f"projects {', '.join(part.places)}"

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        part = world.result.trackers[self.kind]
        for key, project, summary, status, assignee, resolution, description in JIRA_ISSUES:
            issue = self.fake.create_issue(
                project, summary, description=description, assignee=assignee, at=next(moments)
            )
            if status != "To Do":
                self.fake.transition(issue, status, resolution=resolution, at=next(moments))
            part.issues[key] = issue.id
            part.keys[key] = issue.key

    # -- engineers (the fake's workflow, as a person clicking in Jira) --------------------------

    def _id(self, key: str) -> str:
        if self.result is not None and key in self.result.keys(self.kind):
            return self.result.issue_ids(self.kind)[key]
        return key

    def move(self, key: str, state: str, *, by: str = "Ada Novak", resolution: str | None = None) -> FakeIssue:
        """An engineer moves an issue (short seed key or PLAT-n) to ``state``."""
        return self.fake.transition(self._id(key), state, resolution=resolution)

    def move_project(self, key: str, project: str) -> FakeIssue:
        return self.fake.move_project(self._id(key), project)

    def take(self, key: str, *, by: str) -> None:
        self.fake.assign(self._id(key), by)
        self.fake.transition(self._id(key), "In Progress")

    def comment(self, key: str, body: str, *, by: str = "Ada Novak", restricted_to: str | None = None) -> str:
        """A comment as a person writes it in Jira; ``restricted_to`` a role that alone may read it."""
        visibility = {"type": "role", "value": restricted_to} if restricted_to else None
        return str(self.fake.comment(self._id(key), body, author=by, visibility=visibility)["id"])

    def edit_comment(self, comment_id: str, body: str, *, by: str = "Ada Novak") -> None:
        issue = next(i for i in self.fake.issues.values() if any(c["id"] == comment_id for c in i.comments))
        self.fake.edit_comment_as_person(issue, comment_id, body)

    def delete_comment(self, comment_id: str) -> None:
        self.fake.delete_comment_as_person(comment_id)

    # -- what engineers see -------------------------------------------------------------------

    def view(self, key: str) -> IssueView:
        issue = self.fake.get(self._id(key))
        return IssueView(
            id=issue.id,
            key=issue.key,
            title=issue.summary,
            state=issue.status,
            url=f"{self.url}/browse/{issue.key}",
            links=[
                f"remote link: {obj['title']} ({obj.get('summary', '')}) → {obj['url']}"
                for obj in (link["object"] for link in issue.remotelinks)
            ],
            place=f"project {issue.project}",
        )
