"""Build and serve the sandbox: the fakes, seeded, on loopback ports.

``build_sandbox`` is what the demo and end-to-end tests use; ``serve`` backs
the ``syncd sandbox`` command: it starts the fakes, prints where they are,
the sandbox credentials and a syncd.toml snippet, and blocks until Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from typing import Callable, TextIO

from connectors.github.fake import SANDBOX_GITHUB_TOKEN, GitHubFake
from connectors.jira.fake import SANDBOX_EMAIL as JIRA_EMAIL
from connectors.jira.fake import SANDBOX_TOKEN as JIRA_TOKEN
from connectors.jira.fake import JiraFake
from connectors.linear.fake import SANDBOX_API_KEY, LinearFake
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake
from syncd.sandbox.seed import GITHUB_REPOSITORIES, JIRA_PROJECTS, SeedResult, seed
from syncd.sandbox.server import Sandbox

DEFAULT_PORTS = {"zendesk": 8801, "linear": 8802, "github": 8803, "jira": 8804}
TRACKERS = ("linear", "github", "jira")
LINEAR_TEAMS = ("ENG", "APP")


def build_sandbox(
    *,
    seed_data: bool = True,
    clock: Callable[[], datetime] | None = None,
    rng_seed: int = 7,
    trackers: tuple[str, ...] | list[str] = TRACKERS,
) -> Sandbox:
    """The Zendesk fake and the named tracker fakes in a (not yet started) Sandbox.

    Linear is always there (the seeded tickets name Linear issues); GitHub
    and Jira are added when ``trackers`` names them. ``sandbox.seed`` holds
    the SeedResult, or None with ``seed_data=False``.
    """
    unknown = [t for t in trackers if t not in TRACKERS]
    if unknown or "linear" not in trackers:
        raise ValueError(f"trackers={tuple(trackers)!r}: choose from {', '.join(TRACKERS)} (linear included)")
    zendesk = ZendeskFake(clock=clock, seed=rng_seed)
    linear = LinearFake(clock=clock, seed=rng_seed)
    services: list = [zendesk, linear]
    github = jira = None
    if "github" in trackers:
        github = GitHubFake(seed=rng_seed, **({"clock": lambda: clock().timestamp()} if clock else {}))
        services.append(github)
    if "jira" in trackers:
        jira = JiraFake(clock=clock, seed=rng_seed, projects=dict(JIRA_PROJECTS))
        services.append(jira)
    sandbox = Sandbox(services)
    sandbox.seed = (
        seed(zendesk, linear, rng_seed=rng_seed, github=github, jira=jira)  # type: ignore[attr-defined]
        if seed_data
        else None
    )
    return sandbox


def trackers_of(sandbox: Sandbox) -> list[str]:
    """The tracker fakes a sandbox serves, in the order syncd lists them."""
    return [name for name in TRACKERS if name in sandbox.services]


def tracker_config(sandbox: Sandbox, name: str) -> list[str]:
    """The ``[connectors.NAME]`` table for one tracker fake (no secrets)."""
    lines = [f"[connectors.{name}]", f'kind = "{name}"', f'url = "{sandbox.url(name)}"']
    if name == "linear":
        lines.append("teams = [" + ", ".join(f'"{t}"' for t in LINEAR_TEAMS) + "]")
    elif name == "github":
        lines.append("repositories = [" + ", ".join(f'"{r}"' for r, _ in GITHUB_REPOSITORIES) + "]")
    elif name == "jira":
        lines.append(f'email = "{JIRA_EMAIL}"')
        lines.append("projects = [" + ", ".join(f'"{k}"' for k, _ in JIRA_PROJECTS) + "]")
    return lines


# The environment variable and value for each fake's secret.
SECRETS = {
    "zendesk": ("SYNCD_CONNECTORS__ZENDESK__TOKEN", SANDBOX_TOKEN),
    "linear": ("SYNCD_CONNECTORS__LINEAR__API_KEY", SANDBOX_API_KEY),
    "github": ("SYNCD_CONNECTORS__GITHUB__TOKEN", SANDBOX_GITHUB_TOKEN),
    "jira": ("SYNCD_CONNECTORS__JIRA__API_TOKEN", JIRA_TOKEN),
}


def secrets_env(sandbox: Sandbox) -> dict[str, str]:
    """Environment that gives syncd the sandbox's (fixed, fake) credentials."""
    return dict(SECRETS[name] for name in ("zendesk", *trackers_of(sandbox)))


def config_snippet(sandbox: Sandbox, result: SeedResult | None) -> str:
    """A syncd.toml fragment pointing syncd at a running sandbox (secrets go in the environment)."""
    trackers = trackers_of(sandbox)
    lines = [
        "[sync]",
        'helpdesk = "zendesk"',
        "trackers = [" + ", ".join(f'"{t}"' for t in trackers) + "]",
        "",
        "[connectors.zendesk]",
        'kind = "zendesk"',
        f'url = "{sandbox.url("zendesk")}"',
        f'email = "{SANDBOX_EMAIL}"',
    ]
    if result is not None:
        lines.append(f"link_field_id = {result.linked_issue_field_id}")
        lines.append(f"status_field_id = {result.linked_issue_status_field_id}")
    for name in trackers:
        lines += ["", *tracker_config(sandbox, name)]
    lines += ["", "# and in the environment:"]
    lines += [f"#   export {var}={value}" for var, value in secrets_env(sandbox).items()]
    return "\n".join(lines)


def describe(sandbox: Sandbox, result: SeedResult | None) -> str:
    """What a person needs to point a client at the running sandbox."""
    out = [
        f"Zendesk fake: {sandbox.url('zendesk')}  (Basic auth '{SANDBOX_EMAIL}/token' : '{SANDBOX_TOKEN}')",
        f"Linear fake:  {sandbox.url('linear')}/graphql  (Authorization: {SANDBOX_API_KEY})",
    ]
    if "github" in sandbox.services:
        out.append(f"GitHub fake:  {sandbox.url('github')}  (Authorization: Bearer {SANDBOX_GITHUB_TOKEN})")
    if "jira" in sandbox.services:
        out.append(f"Jira fake:    {sandbox.url('jira')}/rest/api/3  (Basic auth '{JIRA_EMAIL}' : '{JIRA_TOKEN}')")
    out.append("These credentials are fixed sandbox values; real services do not accept them.")
    if result is not None:
        out.append(
            f"Seeded {len(result.tickets)} tickets, {len(result.issues)} Linear issues "
            f"(teams {', '.join(result.teams)})."
        )
        if result.github_issues:
            repos = ", ".join(f"{r} ({v})" for r, v in result.repositories.items())
            out.append(f"       {len(result.github_issues)} GitHub issues in {repos}.")
        if result.jira_issues:
            out.append(f"       {len(result.jira_issues)} Jira issues in projects {', '.join(result.jira_projects)}.")
    out += ["", "syncd.toml:", "", config_snippet(sandbox, result)]
    return "\n".join(out)


def serve(
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    seed_data: bool = True,
    *,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    trackers: tuple[str, ...] = TRACKERS,
) -> None:
    """Start the sandbox and block until Ctrl-C, SIGTERM or ``stop`` is set.

    ``ports`` maps a fake's name to its port (0: any free one); a fake not
    named gets its default port from DEFAULT_PORTS.
    """
    sandbox = build_sandbox(seed_data=seed_data, trackers=trackers)
    ports = {**DEFAULT_PORTS, **(ports or {})}
    sandbox.host = host
    try:
        sandbox.start(ports)
    except OSError as exc:
        sandbox.stop()
        wanted = ", ".join(f"{name} {ports[name]}" for name in sandbox.services)
        raise SystemExit(
            f"sandbox: cannot listen on {host} ({wanted}): {exc.strerror}; "
            "choose other ports (--zendesk-port, --linear-port, --github-port, --jira-port)"
        ) from None
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(describe(sandbox, getattr(sandbox, "seed", None)), file=out, flush=True)
    print("\nServing; press Ctrl-C to stop.", file=out, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        print("Sandbox stopped.", file=out, flush=True)
