"""Build and serve the sandbox: both fakes, seeded, on loopback ports.

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

from syncd.sandbox.linear import SANDBOX_API_KEY, LinearFake
from syncd.sandbox.seed import SeedResult, seed
from syncd.sandbox.server import Sandbox
from syncd.sandbox.zendesk import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake

DEFAULT_PORTS = {"zendesk": 8801, "linear": 8802}


def build_sandbox(*, seed_data: bool = True, clock: Callable[[], datetime] | None = None,
                  rng_seed: int = 7) -> Sandbox:
    """Both fakes in a (not yet started) Sandbox; ``sandbox.seed`` holds the SeedResult or None."""
    zendesk = ZendeskFake(clock=clock, seed=rng_seed)
    linear = LinearFake(clock=clock, seed=rng_seed)
    sandbox = Sandbox([zendesk, linear])
    sandbox.seed = seed(zendesk, linear, rng_seed=rng_seed) if seed_data else None  # type: ignore[attr-defined]
    return sandbox


def config_snippet(sandbox: Sandbox, result: SeedResult | None) -> str:
    """A syncd.toml fragment pointing syncd at a running sandbox (secrets go in the environment)."""
    lines = [
        "[sync]",
        'helpdesk = "zendesk"',
        'trackers = ["linear"]',
        "",
        "[connectors.zendesk]",
        'kind = "zendesk"',
        f'url = "{sandbox.url("zendesk")}"',
        f'email = "{SANDBOX_EMAIL}"',
    ]
    if result is not None:
        lines.append(f"link_field_id = {result.linked_issue_field_id}")
        lines.append(f"status_field_id = {result.linked_issue_status_field_id}")
    lines += [
        "",
        "[connectors.linear]",
        'kind = "linear"',
        f'url = "{sandbox.url("linear")}"',
        'teams = ["ENG", "APP"]',
        "",
        "# and in the environment:",
        f"#   export SYNCD_CONNECTORS__ZENDESK__TOKEN={SANDBOX_TOKEN}",
        f"#   export SYNCD_CONNECTORS__LINEAR__API_KEY={SANDBOX_API_KEY}",
    ]
    return "\n".join(lines)


def describe(sandbox: Sandbox, result: SeedResult | None) -> str:
    """What a person needs to point a client at the running sandbox."""
    out = [
        f"Zendesk fake: {sandbox.url('zendesk')}  (Basic auth '{SANDBOX_EMAIL}/token' : '{SANDBOX_TOKEN}')",
        f"Linear fake:  {sandbox.url('linear')}/graphql  (Authorization: {SANDBOX_API_KEY})",
        "These credentials are fixed sandbox values; real services do not accept them.",
    ]
    if result is not None:
        out.append(f"Seeded {len(result.tickets)} tickets, {len(result.issues)} issues "
                   f"(teams {', '.join(result.teams)}).")
    out += ["", "syncd.toml:", "", config_snippet(sandbox, result)]
    return "\n".join(out)


def serve(host: str = "127.0.0.1", ports: dict[str, int] | None = None, seed_data: bool = True, *,
          out: TextIO = sys.stdout, stop: threading.Event | None = None) -> None:
    """Start the sandbox and block until Ctrl-C, SIGTERM or ``stop`` is set."""
    sandbox = build_sandbox(seed_data=seed_data)
    sandbox.host = host
    try:
        sandbox.start(dict(DEFAULT_PORTS if ports is None else ports))
    except OSError as exc:
        sandbox.stop()
        raise SystemExit(f"sandbox: cannot listen on {host} ports {ports or DEFAULT_PORTS}: {exc.strerror}; "
                         "choose other ports") from None
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
