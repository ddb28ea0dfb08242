"""A running sandbox with a syncd configuration pointed at it.

Used by ``syncd demo``, the end-to-end and crash tests and the benchmarks:
it starts the fakes, writes a ``syncd.toml`` into a working directory, and
lets a script act as the people in the story would — an agent adding an
internal note, an engineer moving an issue — through the services' public
APIs, over HTTP, with their own credentials.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import requests

from syncd.sandbox.linear import SANDBOX_API_KEY
from syncd.sandbox.runner import build_sandbox
from syncd.sandbox.server import Sandbox
from syncd.sandbox.zendesk import SANDBOX_EMAIL, SANDBOX_TOKEN

AGENT_TOKEN_NOTE = "agents authenticate with the account's API token, as in Zendesk"


class Playground:
    def __init__(self, workdir: Path, *, seed_data: bool = True, clock: Callable[[], datetime] | None = None,
                 rng_seed: int = 7, extra_config: str = "", sandbox: Sandbox | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox or build_sandbox(seed_data=seed_data, clock=clock, rng_seed=rng_seed)
        self.sandbox.start()
        self.zendesk = self.sandbox["zendesk"]
        self.linear = self.sandbox["linear"]
        self.seed = getattr(self.sandbox, "seed", None)
        self.config_path = self.workdir / "syncd.toml"
        self.store_path = self.workdir / "syncd.db"
        self.config_path.write_text(self.config_text(extra_config))
        self.env = {
            "SYNCD_CONNECTORS__ZENDESK__TOKEN": SANDBOX_TOKEN,
            "SYNCD_CONNECTORS__LINEAR__API_KEY": SANDBOX_API_KEY,
        }
        self._engineer_keys: dict[str, str] = {}

    def config_text(self, extra: str = "") -> str:
        fields = ""
        if self.seed is not None:
            fields = (f"link_field_id = {self.seed.linked_issue_field_id}\n"
                      f"status_field_id = {self.seed.linked_issue_status_field_id}\n")
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
helpdesk = "zendesk"
trackers = ["linear"]

[connectors.zendesk]
kind = "zendesk"
url = "{self.sandbox.url('zendesk')}"
email = "{SANDBOX_EMAIL}"
max_wait = 2
{fields}
[connectors.linear]
kind = "linear"
url = "{self.sandbox.url('linear')}"
teams = ["ENG", "APP"]
workspace = "sandbox"
max_wait = 2
{extra}"""

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

    def agent_set_status(self, ticket_id: int, status: str, *, agent: str = "Priya Raman") -> dict:
        return self._put_ticket(ticket_id, {"status": status}, agent)

    def _put_ticket(self, ticket_id: int, ticket: dict, agent: str) -> dict:
        response = self.agent_session(agent).put(f"{self.sandbox.url('zendesk')}/api/v2/tickets/{ticket_id}",
                                                 json={"ticket": ticket}, timeout=10)
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
        response = requests.post(f"{self.sandbox.url('linear')}/graphql", timeout=10,
                                 json={"query": query, "variables": variables},
                                 headers={"Authorization": self.engineer_key(engineer)})
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Linear sandbox refused: {body['errors']}")
        return body["data"]

    def engineer_move(self, identifier: str, state_name: str, *, engineer: str = "Ada Novak") -> dict:
        """An engineer moves an issue to another workflow state in Linear."""
        issue = self.linear.issue(identifier)
        state_id = self.linear.state_id(issue["team"]["key"] if isinstance(issue.get("team"), dict)
                                        else issue["teamKey"], state_name)
        data = self.graphql(
            "mutation Move($id: String!, $input: IssueUpdateInput!) {"
            " issueUpdate(id: $id, input: $input) { success issue { identifier state { name } } } }",
            {"id": issue["id"], "input": {"stateId": state_id}}, engineer=engineer)
        return data["issueUpdate"]["issue"]

    def close(self) -> None:
        self.sandbox.stop()

    def __enter__(self) -> "Playground":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
