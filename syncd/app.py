"""Wiring: settings in, a ready store, connectors and engine out."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from connectors.base import Connector, Helpdesk, Tracker, connector_class, load_registry, utc_now
from mappings.files import TrackerKind, load_mappings
from mappings.handoff_plan import DEMAND_SLOT
from mappings.links import shared_key_trackers
from mappings.planner import PlanSettings
from mappings.routes import Mappings
from syncd.config import Settings
from syncd.engine import Engine
from syncd.errors import ConfigError
from syncd.store import Store, open_store


@dataclass
class App:
    settings: Settings
    store: Store
    connectors: dict[str, Connector]
    engine: Engine

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.store.close()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_connectors(
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
    kept_slots: tuple[str, ...] = (),
) -> dict[str, Connector]:
    """The configured connectors; each tracker is told ``kept_slots``: the slots of the
    comments syncd keeps in place on its issues (:func:`kept_slots`)."""
    out: dict[str, Connector] = {}
    for name, config in settings.connectors.items():
        cls = connector_class(config.kind)
        if issubclass(cls, Tracker):
            out[name] = cls(name, config, sleep=sleep, clock=clock, kept_slots=kept_slots)
        else:
            out[name] = cls(name, config, sleep=sleep, clock=clock)
    return out


def kept_slots(mappings: Mappings | None) -> tuple[str, ...]:
    """The comment slots syncd keeps in place on issues: the handoff's demand comment
    when the mapping files turn the handoff on (the engine's rule), else none."""
    return (DEMAND_SLOT,) if mappings is not None and mappings.shows_stages else ()


def plan_settings(
    settings: Settings,
    helpdesk: Helpdesk,
    trackers: dict[str, Tracker] | None = None,
    mappings: Mappings | None = None,
) -> PlanSettings:
    trackers = trackers or {}
    shared = shared_key_trackers({name: t.key_prefixes() for name, t in trackers.items()})
    return PlanSettings(
        helpdesk=helpdesk.name,
        helpdesk_name=helpdesk.label,
        linked_tag=settings.sync.linked_tag,
        status_field=helpdesk.status_field_id(),
        reopen_statuses=tuple(settings.sync.reopen_statuses),
        note_format=helpdesk.text_format,
        attachment_formats={name: t.attachment_format for name, t in trackers.items()},
        mappings=mappings,
        tracker_kinds={name: t.kind for name, t in trackers.items()},
        qualified={name: trackers[name].label for name in shared},
        existing_links=settings.sync.existing_links,
    )


def tracker_kinds(registry: dict[str, Any] | None = None) -> dict[str, TrackerKind]:
    """What each installed tracker kind accepts in the mapping files, from its connector class."""
    registry = registry if registry is not None else load_registry()
    out = {}
    for kind in registry:
        try:
            cls = connector_class(kind, registry)
        except ImportError:  # a broken plugin: its kind is unknown (and fails where it is configured)
            continue
        if issubclass(cls, Tracker):
            rules = cls.state_rule_model
            out[kind] = TrackerKind(
                rule_model=rules, conditions=rules.conditions() if rules else (), team_pattern=cls.team_pattern
            )
    return out


def handoff_mappings(settings: Settings) -> Mappings:
    """The mapping files of ``sync.mappings``, checked against the configured trackers (ConfigError if bad)."""
    trackers = {name: settings.connectors[name].kind for name in settings.sync.trackers if name in settings.connectors}
    path = settings.mappings_path
    if "mappings" in settings.sync.model_fields_set and not path.exists():
        raise ConfigError(
            [
                f"sync.mappings: {path} does not exist; create it (mappings/examples/ is a start) "
                "or remove sync.mappings to run with the built-in defaults"
            ]
        )
    return load_mappings(path, trackers=trackers, kinds=tracker_kinds())


# Issue snapshots read at a time when fill_native gives old ones their state words.
NATIVE_PAGE = 500


def fill_native(store: Store, trackers: dict[str, Tracker]) -> int:
    """Give issue snapshots stored before ``Issue.native`` existed their tracker's
    state words, once, so the admin's state rules hold for issues that have not
    changed since the upgrade. Returns how many were filled. A page of them at a time,
    each page in a transaction of its own: what it holds does not grow with the store."""
    filled = 0
    for name, tracker in trackers.items():
        after = ""
        while stale := store.issues_without_native(name, after=after, limit=NATIVE_PAGE):
            with store.transaction():
                for issue in stale:
                    store.set_native(replace(issue, native=tracker.native_of_stored(issue)))
            filled += len(stale)
            after = stale[-1].ref.id
    return filled


def build_app(
    settings: Settings,
    *,
    readonly: bool = False,
    shared: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
    store_path: Path | None = None,
) -> App:
    """``store_path``: another store file than the configured one (``syncd once --dry-run`` plans in a copy)."""
    # Read-only commands (status, history...) inspect the store; only the
    # ones that run the engine need the mapping files to be good.
    mappings = None if readonly else handoff_mappings(settings)
    store = (
        Store(store_path, readonly=readonly, shared=shared, clock=clock)
        if store_path is not None
        else open_store(settings, readonly=readonly, shared=shared, clock=clock)
    )
    try:
        connectors = build_connectors(settings, sleep=sleep, clock=clock, kept_slots=kept_slots(mappings))
        helpdesk = connectors[settings.sync.helpdesk]
        chosen = {name: connectors[name] for name in settings.sync.trackers}
        if not isinstance(helpdesk, Helpdesk):
            raise ConfigError([f"sync.helpdesk: {settings.sync.helpdesk!r} is not a helpdesk connector"])
        trackers: dict[str, Tracker] = {}
        for name, tracker in chosen.items():
            if not isinstance(tracker, Tracker):
                raise ConfigError([f"sync.trackers: {name!r} is not a tracker connector"])
            trackers[name] = tracker
        if not readonly:
            fill_native(store, trackers)
        engine = Engine(
            store,
            helpdesk,
            trackers,
            plan_settings(settings, helpdesk, trackers, mappings),
            max_attempts=settings.daemon.max_attempts,
            backoff_max=settings.daemon.backoff_max,
            clock=clock,
            mappings=mappings,
        )
    except BaseException:
        store.close()
        raise
    return App(settings, store, connectors, engine)
