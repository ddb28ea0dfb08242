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

from connectors.base import connector_class, load_registry
from connectors.testing import load_fake
from syncd.sandbox.seed import NEEDS, SeedResult, seed_fakes
from syncd.sandbox.server import FakeService, Sandbox


def _registered() -> dict[str, tuple[type[FakeService], str, str]]:
    """kind -> (fake class, role, display name) for each registered connector with a fake, by default port."""
    registry = load_registry()
    found = {}
    for kind in registry:
        cls = connector_class(kind, registry)
        if cls.fake:
            fake = load_fake(cls)
            if not (isinstance(fake, type) and issubclass(fake, FakeService)):
                raise TypeError(f"{cls.__name__}.fake names {cls.fake!r}, which is not a sandbox FakeService")
            found[kind] = (fake, cls.role, cls.display_name or kind)
    return dict(sorted(found.items(), key=lambda item: item[1][0].default_port))


REGISTERED = _registered()
FAKES = {kind: fake for kind, (fake, _, _) in REGISTERED.items()}
DEFAULT_PORTS = {kind: fake.default_port for kind, fake in FAKES.items()}
HELPDESK = next(kind for kind, (_, role, _) in REGISTERED.items() if role == "helpdesk")
TRACKERS = tuple(kind for kind, (_, role, _) in REGISTERED.items() if role == "tracker")


def build_sandbox(
    *,
    seed_data: bool = True,
    clock: Callable[[], datetime] | None = None,
    rng_seed: int = 7,
    trackers: tuple[str, ...] | list[str] = TRACKERS,
) -> Sandbox:
    """The helpdesk fake and the named tracker fakes in a (not yet started) Sandbox.

    The fakes the seed data needs (seed.NEEDS) are always there; other
    trackers are added when ``trackers`` names them. ``sandbox.seed`` holds
    the SeedResult, or None with ``seed_data=False``.
    """
    unknown = [t for t in trackers if t not in TRACKERS]
    needed = [t for t in NEEDS if t in TRACKERS]
    if unknown or not set(needed) <= set(trackers):
        raise ValueError(
            f"trackers={tuple(trackers)!r}: choose from {', '.join(TRACKERS)} ({', '.join(needed)} included)"
        )
    kinds = [HELPDESK, *(t for t in TRACKERS if t in trackers)]
    fakes = {kind: FAKES[kind].for_sandbox(clock=clock, seed=rng_seed) for kind in kinds}
    sandbox = Sandbox(list(fakes.values()))
    sandbox.seed = seed_fakes(fakes, rng_seed=rng_seed) if seed_data else None
    return sandbox


def trackers_of(sandbox: Sandbox) -> list[str]:
    """The tracker fakes a sandbox serves, in the order syncd lists them."""
    return [name for name in TRACKERS if name in sandbox.services]


def connector_table(sandbox: Sandbox, name: str) -> list[str]:
    """The ``[connectors.NAME]`` table for one fake (no secrets)."""
    lines = [f"[connectors.{name}]", f'kind = "{name}"', f'url = "{sandbox.url(name)}"']
    return lines + sandbox[name].connector_config()


def secrets_env(sandbox: Sandbox) -> dict[str, str]:
    """Environment that gives syncd the sandbox's (fixed, fake) credentials."""
    return {
        f"SYNCD_CONNECTORS__{name.upper()}__{field.upper()}": value
        for name in (HELPDESK, *trackers_of(sandbox))
        for field, value in sandbox[name].secrets.items()
    }


def config_snippet(sandbox: Sandbox, result: SeedResult | None) -> str:
    """A syncd.toml fragment pointing syncd at a running sandbox (secrets go in the environment)."""
    trackers = trackers_of(sandbox)
    lines = [
        "[sync]",
        f'helpdesk = "{HELPDESK}"',
        "trackers = [" + ", ".join(f'"{t}"' for t in trackers) + "]",
        "",
        *connector_table(sandbox, HELPDESK),
    ]
    if result is not None:
        lines.append(f"link_field_id = {result.linked_issue_field_id}")
        lines.append(f"status_field_id = {result.linked_issue_status_field_id}")
    for name in trackers:
        lines += ["", *connector_table(sandbox, name)]
    lines += ["", "# and in the environment:"]
    lines += [f"#   export {var}={value}" for var, value in secrets_env(sandbox).items()]
    return "\n".join(lines)


def describe(sandbox: Sandbox, result: SeedResult | None) -> str:
    """What a person needs to point a client at the running sandbox."""
    out = [
        f"{REGISTERED[name][2] + ' fake:':<14}{sandbox[name].describe(sandbox.url(name))}"
        for name in (HELPDESK, *trackers_of(sandbox))
    ]
    out.append("These credentials are fixed sandbox values; real services do not accept them.")
    if result is not None:
        out += result.summary()
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
            f"sandbox: cannot listen on {host} ({wanted}): {exc.strerror}; choose other ports (--port KIND=PORT)"
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
