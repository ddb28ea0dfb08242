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
from datetime import datetime, timezone
from typing import Callable, TextIO

from connectors.base import connector_class, load_registry
from connectors.testing import load_fake
from syncd.sandbox.seed import SeedResult, seed_fakes
from syncd.sandbox.server import FakeService, Sandbox
from syncd.sandbox.world import HelpdeskWorld, ServiceWorld, load_world, world_class


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
HELPDESKS = tuple(kind for kind, (_, role, _) in REGISTERED.items() if role == "helpdesk")
TRACKERS = tuple(kind for kind, (_, role, _) in REGISTERED.items() if role == "tracker")
NAMES = {kind: name for kind, (_, _, name) in REGISTERED.items()}


def _offers_story(kind: str) -> bool:
    world = world_class(FAKES[kind])
    return world is not None and issubclass(world, HelpdeskWorld) and world.offers_story


# The helpdesk the sandbox serves unless told otherwise: the first whose part of
# the world offers the demo's story (the others may be chosen with --helpdesk).
STORY_HELPDESKS = tuple(kind for kind in HELPDESKS if _offers_story(kind))
HELPDESK = (STORY_HELPDESKS or HELPDESKS)[0]
# The trackers the seeded tickets already name: in every sandbox.
NEEDS = tuple(kind for kind in TRACKERS if (world := world_class(FAKES[kind])) is not None and world.linked_from_seed)


def build_sandbox(
    *,
    seed_data: bool = True,
    clock: Callable[[], datetime] | None = None,
    rng_seed: int = 7,
    trackers: tuple[str, ...] | list[str] = TRACKERS,
    helpdesk: str = HELPDESK,
) -> Sandbox:
    """The helpdesk fake and the named tracker fakes in a (not yet started) Sandbox.

    The trackers the seed data needs (NEEDS) are always there; other
    trackers are added when ``trackers`` names them. ``sandbox.seed`` holds
    the SeedResult, or None with ``seed_data=False``; ``sandbox.worlds`` each
    fake's part of the world (syncd.sandbox.world), by kind.
    """
    unknown = [t for t in trackers if t not in TRACKERS]
    if unknown or not set(NEEDS) <= set(trackers):
        raise ValueError(
            f"trackers={tuple(trackers)!r}: choose from {', '.join(TRACKERS)} ({', '.join(NEEDS)} included)"
        )
    if helpdesk not in HELPDESKS:
        raise ValueError(f"helpdesk={helpdesk!r}: choose from {', '.join(HELPDESKS)}")
    kinds = [helpdesk, *(t for t in TRACKERS if t in trackers)]
    fakes = {kind: FAKES[kind].for_sandbox(clock=clock, seed=rng_seed) for kind in kinds}
    sandbox = Sandbox(list(fakes.values()))
    worlds: dict[str, ServiceWorld] = {}
    for kind, fake in fakes.items():
        world = load_world(fake, kind)
        if world is not None:
            worlds[kind] = world
    sandbox.worlds = worlds
    if seed_data:
        now = (clock or (lambda: datetime.now(timezone.utc)))()
        sandbox.seed = seed_fakes(fakes, worlds, registered_trackers=TRACKERS, now=now, rng_seed=rng_seed)
        for world in worlds.values():
            world.result = sandbox.seed
    return sandbox


def helpdesk_of(sandbox: Sandbox) -> str:
    """The helpdesk fake a sandbox serves."""
    return next(name for name in HELPDESKS if name in sandbox.services)


def trackers_of(sandbox: Sandbox) -> list[str]:
    """The tracker fakes a sandbox serves, in the order syncd lists them."""
    return [name for name in TRACKERS if name in sandbox.services]


def connector_table(sandbox: Sandbox, name: str, result: SeedResult | None = None) -> list[str]:
    """The ``[connectors.NAME]`` table for one fake (no secrets); with ``result``, what names its seeded objects."""
    lines = [f"[connectors.{name}]", f'kind = "{name}"', f'url = "{sandbox.url(name)}"']
    lines += sandbox[name].connector_config()
    world = sandbox.worlds.get(name)
    if result is not None and world is not None:
        lines += world.config_lines(result)
    return lines


def secrets_env(sandbox: Sandbox) -> dict[str, str]:
    """Environment that gives syncd the sandbox's (fixed, fake) credentials."""
    return {
        f"SYNCD_CONNECTORS__{name.upper()}__{field.upper()}": value
        for name in (helpdesk_of(sandbox), *trackers_of(sandbox))
        for field, value in sandbox[name].secrets.items()
    }


def config_snippet(sandbox: Sandbox, result: SeedResult | None) -> str:
    """A syncd.toml fragment pointing syncd at a running sandbox (secrets go in the environment)."""
    trackers = trackers_of(sandbox)
    helpdesk = helpdesk_of(sandbox)
    lines = [
        "[sync]",
        f'helpdesk = "{helpdesk}"',
        "trackers = [" + ", ".join(f'"{t}"' for t in trackers) + "]",
        "",
        *connector_table(sandbox, helpdesk, result),
    ]
    for name in trackers:
        lines += ["", *connector_table(sandbox, name, result)]
    lines += ["", "# and in the environment:"]
    lines += [f"#   export {var}={value}" for var, value in secrets_env(sandbox).items()]
    return "\n".join(lines)


def describe(sandbox: Sandbox, result: SeedResult | None) -> str:
    """What a person needs to point a client at the running sandbox."""
    served = (helpdesk_of(sandbox), *trackers_of(sandbox))
    width = max(len(NAMES[name]) for name in served) + len(" fake: ")
    out = [f"{NAMES[name] + ' fake:':<{width}}{sandbox[name].describe(sandbox.url(name))}" for name in served]
    out.append("These credentials are fixed sandbox values; real services do not accept them.")
    if result is not None:
        out += result.summary(NAMES)
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
    helpdesk: str = HELPDESK,
) -> None:
    """Start the sandbox and block until Ctrl-C, SIGTERM or ``stop`` is set.

    ``ports`` maps a fake's name to its port (0: any free one); a fake not
    named gets its default port from DEFAULT_PORTS. ``helpdesk``: the
    helpdesk fake to serve (one of HELPDESKS).
    """
    sandbox = build_sandbox(seed_data=seed_data, trackers=trackers, helpdesk=helpdesk)
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
