"""GitHub's part of the sandbox world: the public SDK repository and the private billing one, the engineers' acts.

``sandbox/mobile-sdk`` is public (anyone can read it: syncd must write
nothing there that names a customer), ``sandbox/billing`` is private. No
seeded ticket names a GitHub issue: the demo and the tests make those links
the way agents do.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Iterator

import requests

from connectors.github.fake import GITHUB_REPOSITORIES, FakeIssue, GitHubFake
from syncd.sandbox.seed import ENGINEERS, World
from syncd.sandbox.world import IssueView, TrackerWorld

GITHUB_ISSUES = [
    # key, repository, title, body, assignee login, labels, closed as (None: open)
    (
        "offline",
        "sandbox/mobile-sdk",
        "Crash on cold start when the offline cache is corrupt",
        "SQLiteDatabaseCorruptException from CacheStore.open(); we should drop and rebuild the cache.",
        "sam-okafor",
        ("bug",),
        None,
    ),
    (
        "push",
        "sandbox/mobile-sdk",
        "Push notifications delivered twice on iOS 17",
        "The token refresh registers a second APNs handler.",
        None,
        ("bug", "ios"),
        None,
    ),
    (
        "totp",
        "sandbox/mobile-sdk",
        "TOTP codes rejected after restoring the authenticator on a new device",
        "The restored seed is read with the wrong time step; codes are off by one window.",
        "ada-novak",
        ("bug", "auth"),
        None,
    ),
    (
        "configure",
        "sandbox/mobile-sdk",
        "Deprecate setApiKey() in favour of configure()",
        "Shipped in 5.2.",
        "ravi-patel",
        ("api",),
        "completed",
    ),
    (
        "vat",
        "sandbox/billing",
        "Norwegian invoices use the 20% VAT rate instead of 25%",
        "The rate table keys Norway under the EU default.",
        "lena-fischer",
        ("bug",),
        None,
    ),
    (
        "proration",
        "sandbox/billing",
        "Proration is wrong after a mid-cycle downgrade",
        "Credits are computed from the new plan's price.",
        None,
        ("bug",),
        None,
    ),
    (
        "dunning",
        "sandbox/billing",
        "Retry failed card payments on day 3",
        "Superseded by the payment provider's smart retries.",
        None,
        ("feature",),
        "not_planned",
    ),
]


def login_of(name: str) -> str:
    """A person's GitHub login ("Ada Novak" -> "ada-novak")."""
    return name.lower().replace(" ", "-")


@contextlib.contextmanager
def _github_at(fake: GitHubFake, when: datetime) -> Iterator[None]:
    """The GitHub fake's clock is epoch seconds and never goes back: call in time order."""
    clock = fake._clock
    fake._clock = lambda: when.timestamp()
    try:
        yield
    finally:
        fake._clock = clock


class GitHubWorld(TrackerWorld):
    story_role = "public"
    fake: GitHubFake

    def __init__(self, fake: GitHubFake, kind: str):
        super().__init__(fake, kind)
        self._tokens: dict[str, str] = {}

    def setup(self, world: World) -> None:
        part = world.result.trackers[self.kind]
        with _github_at(self.fake, world.start):
            for name, private in GITHUB_REPOSITORIES:
                self.fake.create_repo(name, private=private)
                part.places[name] = "private" if private else "public"
        for name, _ in ENGINEERS:
            part.people[name] = login_of(name)
        part.where = ", ".join(f"{r} ({v})" for r, v in part.places.items())

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        part = world.result.trackers[self.kind]
        for key, repo, title, body, assignee, labels, closed in GITHUB_ISSUES:
            with _github_at(self.fake, next(moments)):
                issue = self.fake.create_issue(repo, title, body, user="ravi-patel", assignee=assignee, labels=labels)
            if closed:
                with _github_at(self.fake, next(moments)):
                    self.fake.close(issue, closed)
            part.issues[key] = str(issue.id)
            part.keys[key] = f"{issue.repo.full_name}#{issue.number}"

    # -- engineers, through the REST API ----------------------------------------------------

    def token(self, login: str) -> str:
        """A personal token for ``login`` on the fake."""
        if login not in self._tokens:
            token = "ghp_" + "".join(c for c in login.lower() if c.isalnum()).ljust(36, "0")
            self.fake.tokens[token] = login
            self._tokens[login] = token
        return self._tokens[login]

    def issue(self, key: str) -> FakeIssue:
        """The fake's issue for a short seed key, an ``owner/repo#n`` key or an id."""
        if self.result is not None and key in self.result.issue_ids(self.kind):
            return self.fake.issues[int(self.result.issue_ids(self.kind)[key])]
        if key.isdigit():
            return self.fake.issues[int(key)]
        repo, number = key.split("#")
        return next(
            i for i in self.fake.issues.values() if i.repo.full_name.lower() == repo.lower() and i.number == int(number)
        )

    def close(self, key: str, reason: str = "completed", *, login: str = "ada-novak") -> dict:
        """An engineer closes an issue (``completed`` or ``not_planned``)."""
        return self._patch(key, {"state": "closed", "state_reason": reason}, login)

    def reopen(self, key: str, *, login: str = "ada-novak") -> dict:
        return self._patch(key, {"state": "open"}, login)

    def assign(self, key: str, assignee: str | None, *, login: str = "ada-novak") -> dict:
        return self._patch(key, {"assignees": [assignee] if assignee else []}, login)

    def move(self, key: str, state: str, *, by: str = "Ada Novak") -> None:
        """``state``: "open", or "closed" with a reason ("closed (not planned)"; default completed)."""
        if state == "open":
            self.reopen(key, login=login_of(by))
        else:
            reason = state.partition("(")[2].rstrip(")").strip().replace(" ", "_") or "completed"
            self.close(key, reason, login=login_of(by))

    def take(self, key: str, *, by: str) -> None:
        self.assign(key, login_of(by), login=login_of(by))

    def comment(self, key: str, body: str, *, by: str = "Ada Novak") -> str:
        """A comment through the REST API, by a person (their name) or a bot (its login, "ci-bot")."""
        issue = self.issue(key)
        response = requests.post(
            f"{self.url}/repos/{issue.repo.full_name}/issues/{issue.number}/comments",
            json={"body": body},
            timeout=10,
            headers={"Authorization": f"Bearer {self.token(login_of(by))}", "Accept": "application/vnd.github+json"},
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def edit_comment(self, comment_id: str, body: str, *, by: str = "Ada Novak") -> None:
        comment = self.fake.comments_by_id[int(comment_id)]
        repo = self.fake.issues[comment.issue_id].repo.full_name
        response = requests.patch(
            f"{self.url}/repos/{repo}/issues/comments/{comment_id}",
            json={"body": body},
            timeout=10,
            headers={"Authorization": f"Bearer {self.token(login_of(by))}", "Accept": "application/vnd.github+json"},
        )
        response.raise_for_status()

    def delete_comment(self, comment_id: str) -> None:
        self.fake.delete_comment(int(comment_id))

    def _patch(self, key: str, body: dict, login: str) -> dict:
        issue = self.issue(key)
        response = requests.patch(
            f"{self.url}/repos/{issue.repo.full_name}/issues/{issue.number}",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {self.token(login)}", "Accept": "application/vnd.github+json"},
        )
        response.raise_for_status()
        return response.json()

    def comment_bodies(self, key: str) -> list[str]:
        """Every comment body stored on the issue (what anyone reading it would see)."""
        return [c.body for c in self.fake.comments_of(self.issue(key))]

    # -- what engineers (and anyone, on a public repository) see ---------------------------------

    def key(self, short: str) -> str:
        issue = self.issue(short)
        return f"{issue.repo.full_name}#{issue.number}"

    def view(self, key: str) -> IssueView:
        issue = self.issue(key)
        state = f"{issue.state} ({issue.state_reason})" if issue.state_reason else issue.state
        return IssueView(
            id=str(issue.id),
            key=f"{issue.repo.full_name}#{issue.number}",
            title=issue.title,
            state=state,
            url=f"{self.url}/{issue.repo.full_name}/issues/{issue.number}",
            description=issue.body or "",
            comments=self.comment_bodies(key),
            place=f"repository {issue.repo.full_name} ({issue.repo.visibility})",
        )
