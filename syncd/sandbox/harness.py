"""A running sandbox with a syncd configuration pointed at it.

Used by ``syncd demo``, the end-to-end and crash tests and the benchmarks:
it starts the fakes, writes a ``syncd.toml`` into a working directory (a
connector for every fake present, secrets in ``env``), and lets a script act
as the people in the story would — an agent adding an internal note, an
engineer moving an issue — through the services' public APIs, over HTTP,
with their own credentials. The acts are each service's own
(:mod:`syncd.sandbox.world`, ``connectors/<kind>/seed.py``); where the real
service offers no API for an act, its part plays the person in the web UI.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import requests

from syncd.sandbox.runner import (
    FAKES,
    HELPDESK,
    TRACKERS,
    build_sandbox,
    connector_table,
    helpdesk_of,
    secrets_env,
    trackers_of,
)
from syncd.sandbox.server import Sandbox
from syncd.sandbox.world import HelpdeskWorld, ServiceWorld, TrackerWorld


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
        helpdesk: str = HELPDESK,
    ):
        """``tracker_options``: extra TOML lines per tracker table (e.g. ``{"kind": "option = 0"}``).
        ``mappings``: a mapping directory for ``sync.mappings`` (default: none, the built-in behaviour).
        ``helpdesk``: the helpdesk fake to serve (default: the one that offers the demo's story)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox or build_sandbox(
            seed_data=seed_data, clock=clock, rng_seed=rng_seed, trackers=trackers, helpdesk=helpdesk
        )
        self.sandbox.start()
        self.helpdesk = helpdesk_of(self.sandbox)
        self.trackers = trackers_of(self.sandbox)
        self.seed = self.sandbox.seed
        self.config_path = self.workdir / "syncd.toml"
        self.store_path = self.workdir / "syncd.db"
        self.tracker_options = dict(tracker_options or {})
        self.mappings = Path(mappings).resolve() if mappings is not None else None
        self.config_path.write_text(self.config_text(extra_config))
        self.env = secrets_env(self.sandbox)

    def __getattr__(self, name: str) -> Any:
        """``pg.<kind>``: the fake of a registered service (None when this sandbox has none)."""
        if name in FAKES:
            return self.sandbox.services.get(name)
        raise AttributeError(name)

    def world(self, kind: str) -> ServiceWorld:
        """A service's part of the world: its people's acts (LookupError if this sandbox has none)."""
        if kind not in self.sandbox.worlds:
            raise LookupError(f"this sandbox has no {kind} fake")
        return self.sandbox.worlds[kind]

    @property
    def desk(self) -> HelpdeskWorld:
        """The helpdesk's part: the agents' and customers' acts."""
        world = self.world(self.helpdesk)
        assert isinstance(world, HelpdeskWorld)
        return world

    def tracker(self, kind: str) -> TrackerWorld:
        """A tracker's part: the engineers' acts."""
        world = self.world(kind)
        assert isinstance(world, TrackerWorld)
        return world

    def tracker_in_role(self, role: str) -> TrackerWorld | None:
        """The tracker playing ``role`` in the story (syncd.sandbox.world), if this sandbox has it."""
        return next(
            (w for w in self.sandbox.worlds.values() if isinstance(w, TrackerWorld) and w.story_role == role), None
        )

    def config_text(self, extra: str = "") -> str:
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
helpdesk = "{self.helpdesk}"
trackers = [{", ".join(f'"{t}"' for t in self.trackers)}]
{self._mappings_line()}
{chr(10).join(connector_table(self.sandbox, self.helpdesk, self.seed))}
max_wait = 2

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
            lines = connector_table(self.sandbox, name, self.seed) + fake.playground_config() + ["max_wait = 2"]
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
        return self.desk.agent_session(agent)

    def agent_note(self, ticket_id: Any, body: str, *, agent: str = "Priya Raman", public: bool = False) -> dict:
        """An agent adds an internal note (or a public reply) to a ticket."""
        return self.desk.agent_note(ticket_id, body, agent=agent, public=public)

    def agent_set_tags(self, ticket_id: Any, tags: list[str], *, agent: str = "Priya Raman") -> dict:
        """An agent replaces a ticket's tags (adding an escalation tag, say)."""
        return self.desk.agent_set_tags(ticket_id, tags, agent=agent)

    def agent_set_status(self, ticket_id: Any, status: str, *, agent: str = "Priya Raman") -> dict:
        return self.desk.agent_set_status(ticket_id, status, agent=agent)

    def engineer_move(self, key: str, state: str, *, engineer: str = "Ada Novak") -> Any:
        """An engineer moves an issue of the tracker the seeded tickets name to ``state``."""
        linked = self.tracker_in_role("linked")
        if linked is None:
            raise LookupError("this sandbox has no tracker that the seeded tickets name")
        return linked.move(key, state, by=engineer)

    def close(self) -> None:
        self.sandbox.stop()

    def __enter__(self) -> "Playground":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
