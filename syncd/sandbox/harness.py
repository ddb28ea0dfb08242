"""A running sandbox with a syncd configuration pointed at it.

Used by ``syncd demo``, the end-to-end and crash tests and the benchmarks:
it starts the fakes, writes a ``syncd.toml`` into a working directory (a
connector for every fake present, secrets in ``env``), and lets a script act
as the people in the story would — an agent adding an internal note, an
engineer moving an issue — through the services' public APIs, over HTTP,
with their own credentials. Where the real service offers no API for an
act (deleting or transferring a GitHub issue, a Jira workflow transition in
this fake), the fake's own method plays the person in the web UI.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

import requests

from connectors.github.fake import GitHubFake
from connectors.jira.fake import JiraFake
from connectors.linear.fake import LinearFake
from connectors.zendesk.fake import SANDBOX_TOKEN, ZendeskFake
from syncd.sandbox.runner import HELPDESK, TRACKERS, build_sandbox, connector_table, secrets_env, trackers_of
from syncd.sandbox.server import Sandbox

AGENT_TOKEN_NOTE = "agents authenticate with the account's API token, as in Zendesk"

_F = TypeVar("_F")


def _present(fake: _F | None, name: str) -> _F:
    """A fake the playground needs here; LookupError if its sandbox has none."""
    if fake is None:
        raise LookupError(f"this sandbox has no {name} fake")
    return fake


class Playground:
    def __init__(
        self,
        workdir: Path,
        *,
        seed_data: bool = True,
        clock: Callable[[], datetime] | None = None,
        rng_seed: int = 7,
        extra_config: str = "",
        sandbox: Sandbox | None = None,
        trackers: tuple[str, ...] = TRACKERS,
        tracker_options: dict[str, str] | None = None,
        mappings: str | Path | None = None,
    ):
        """``tracker_options``: extra TOML lines per tracker table (e.g. ``{"github": "visibility_ttl = 0"}``).
        ``mappings``: a mapping directory for ``sync.mappings`` (default: none, the built-in behaviour)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox or build_sandbox(seed_data=seed_data, clock=clock, rng_seed=rng_seed, trackers=trackers)
        self.sandbox.start()
        self.zendesk = _present(self.sandbox.fake("zendesk", ZendeskFake), "zendesk")
        self.linear = _present(self.sandbox.fake("linear", LinearFake), "linear")  # build_sandbox always has it
        self.github = self.sandbox.fake("github", GitHubFake)
        self.jira = self.sandbox.fake("jira", JiraFake)
        self.trackers = trackers_of(self.sandbox)
        self.seed = self.sandbox.seed
        self.config_path = self.workdir / "syncd.toml"
        self.store_path = self.workdir / "syncd.db"
        self.tracker_options = dict(tracker_options or {})
        self.mappings = Path(mappings).resolve() if mappings is not None else None
        self.config_path.write_text(self.config_text(extra_config))
        self.env = secrets_env(self.sandbox)
        self._engineer_keys: dict[str, str] = {}
        self._github_tokens: dict[str, str] = {}

    def config_text(self, extra: str = "") -> str:
        fields = ""
        if self.seed is not None:
            fields = (
                f"link_field_id = {self.seed.linked_issue_field_id}\n"
                f"status_field_id = {self.seed.linked_issue_status_field_id}\n"
            )
        return f"""\
[store]
path = "{self.store_path.name}"

[daemon]
poll_interval = 1
jitter = 0
health_address = ""

[log]
level = "warning"

[sync]
helpdesk = "{HELPDESK}"
trackers = [{", ".join(f'"{t}"' for t in self.trackers)}]
{self._mappings_line()}
{chr(10).join(connector_table(self.sandbox, HELPDESK))}
max_wait = 2
{fields}
{self._trackers_text()}
{extra}"""

    def _mappings_line(self) -> str:
        if self.mappings is None:
            return ""
        return f"mappings = {json.dumps(str(self.mappings))}\n"

    def _trackers_text(self) -> str:
        tables = []
        for name in self.trackers:
            fake = self.sandbox[name]
            lines = connector_table(self.sandbox, name) + fake.playground_config() + ["max_wait = 2"]
            if self.tracker_options.get(name):
                lines.append(self.tracker_options[name])
            tables.append("\n".join(lines) + "\n")
        return "\n".join(tables)

    # -- syncd ----------------------------------------------------------------------------

    def settings(self):
        from syncd.config import load_config

        return load_config(self.config_path, env=self.env)

    def app(self, **kwargs: Any):
        from syncd.app import build_app

        kwargs.setdefault("sleep", lambda seconds: None)
        return build_app(self.settings(), **kwargs)

    def cli_env(self) -> dict[str, str]:
        """Environment for running the ``syncd`` command against this playground."""
        return {**os.environ, **self.env, "SYNCD_CONFIG": str(self.config_path)}

    # -- people, through the public APIs ---------------------------------------------------------

    def agent_session(self, agent: str = "Priya Raman") -> requests.Session:
        user = next(u for u in self.zendesk.users.values() if u["name"] == agent)
        session = requests.Session()
        session.auth = (f"{user['email']}/token", SANDBOX_TOKEN)  # AGENT_TOKEN_NOTE
        return session

    def agent_note(self, ticket_id: int, body: str, *, agent: str = "Priya Raman", public: bool = False) -> dict:
        """An agent adds an internal note (or a public reply) to a ticket."""
        return self._put_ticket(ticket_id, {"comment": {"body": body, "public": public}}, agent)

    def agent_set_tags(self, ticket_id: int, tags: list[str], *, agent: str = "Priya Raman") -> dict:
        """An agent replaces a ticket's tags (adding an escalation tag, say)."""
        return self._put_ticket(ticket_id, {"tags": tags}, agent)

    def agent_set_status(self, ticket_id: int, status: str, *, agent: str = "Priya Raman") -> dict:
        return self._put_ticket(ticket_id, {"status": status}, agent)

    def _put_ticket(self, ticket_id: int, ticket: dict, agent: str) -> dict:
        response = self.agent_session(agent).put(
            f"{self.sandbox.url('zendesk')}/api/v2/tickets/{ticket_id}", json={"ticket": ticket}, timeout=10
        )
        response.raise_for_status()
        return response.json()["ticket"]

    def engineer_key(self, engineer: str) -> str:
        if engineer not in self._engineer_keys:
            key = "lin_api_" + "".join(c for c in engineer.lower() if c.isalnum()).ljust(32, "0")
            user = next(u for u in self.linear.users.values() if u["name"] == engineer)
            self.linear.add_api_key(key, user["id"])
            self._engineer_keys[engineer] = key
        return self._engineer_keys[engineer]

    def graphql(self, query: str, variables: dict, *, engineer: str = "Ada Novak") -> dict:
        response = requests.post(
            f"{self.sandbox.url('linear')}/graphql",
            timeout=10,
            json={"query": query, "variables": variables},
            headers={"Authorization": self.engineer_key(engineer)},
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Linear sandbox refused: {body['errors']}")
        return body["data"]

    def engineer_move(self, identifier: str, state_name: str, *, engineer: str = "Ada Novak") -> dict:
        """An engineer moves an issue to another workflow state in Linear."""
        issue = self.linear.issue(identifier)
        state_id = self.linear.state_id(
            issue["team"]["key"] if isinstance(issue.get("team"), dict) else issue["teamKey"], state_name
        )
        data = self.graphql(
            "mutation Move($id: String!, $input: IssueUpdateInput!) {"
            " issueUpdate(id: $id, input: $input) { success issue { identifier state { name } } } }",
            {"id": issue["id"], "input": {"stateId": state_id}},
            engineer=engineer,
        )
        return data["issueUpdate"]["issue"]

    # -- GitHub people --------------------------------------------------------------------

    def github_token(self, login: str) -> str:
        """A personal token for ``login`` on the GitHub fake."""
        if login not in self._github_tokens:
            token = "ghp_" + "".join(c for c in login.lower() if c.isalnum()).ljust(36, "0")
            _present(self.github, "github").tokens[token] = login
            self._github_tokens[login] = token
        return self._github_tokens[login]

    def github_issue(self, key: str):
        """The fake's issue for a short seed key, an ``owner/repo#n`` key or an id."""
        if self.seed is not None and key in self.seed.github_issues:
            return _present(self.github, "github").issues[int(self.seed.github_issues[key])]
        if key.isdigit():
            return _present(self.github, "github").issues[int(key)]
        repo, number = key.split("#")
        return next(
            i
            for i in _present(self.github, "github").issues.values()
            if i.repo.full_name.lower() == repo.lower() and i.number == int(number)
        )

    def github_close(self, key: str, reason: str = "completed", *, login: str = "ada-novak") -> dict:
        """An engineer closes an issue (``completed`` or ``not_planned``) through the REST API."""
        return self._github_patch(key, {"state": "closed", "state_reason": reason}, login)

    def github_reopen(self, key: str, *, login: str = "ada-novak") -> dict:
        return self._github_patch(key, {"state": "open"}, login)

    def github_assign(self, key: str, assignee: str | None, *, login: str = "ada-novak") -> dict:
        return self._github_patch(key, {"assignees": [assignee] if assignee else []}, login)

    def _github_patch(self, key: str, body: dict, login: str) -> dict:
        issue = self.github_issue(key)
        response = requests.patch(
            f"{self.sandbox.url('github')}/repos/{issue.repo.full_name}/issues/{issue.number}",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {self.github_token(login)}", "Accept": "application/vnd.github+json"},
        )
        response.raise_for_status()
        return response.json()

    def github_comment_bodies(self, key: str) -> list[str]:
        """Every comment body stored on the issue (what anyone reading it would see)."""
        return [c.body for c in _present(self.github, "github").comments_of(self.github_issue(key))]

    # -- Jira people (the fake's workflow, as a person clicking in Jira) ------------------

    def jira_move(self, key: str, status: str, *, resolution: str | None = None):
        """An engineer moves a Jira issue (short seed key or PLAT-n) to ``status``."""
        return _present(self.jira, "jira").transition(self._jira_key(key), status, resolution=resolution)

    def jira_move_project(self, key: str, project: str):
        return _present(self.jira, "jira").move_project(self._jira_key(key), project)

    def jira_fake(self) -> JiraFake:
        """The Jira fake; LookupError if this sandbox has none."""
        return _present(self.jira, "jira")

    def _jira_key(self, key: str) -> str:
        if self.seed is not None and key in self.seed.jira_keys:
            return self.seed.jira_issues[key]
        return key

    def close(self) -> None:
        self.sandbox.stop()

    def __enter__(self) -> "Playground":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
