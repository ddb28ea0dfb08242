"""What `syncd check` looks at beyond the credentials.

The connectors check the objects the configuration and the mapping files name
against their services (:meth:`connectors.base.Connector.check_objects`); this
module says what each connector is asked about (:func:`check_targets`) and
finds what no single connector can: keys that two trackers' link patterns
both claim (:func:`overlapping_keys`), and secret files other users can read
(:func:`secret_file_findings`). Every finding names the config key or the
mapping file and entry the admin edits.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Mapping

from connectors.base import CheckTargets, Connector, FieldUse, Finding, Helpdesk, RouteTarget, Tracker
from mappings.routes import Mappings
from syncd.config import Settings


def check_targets(
    settings: Settings, mappings: Mappings, connectors: Mapping[str, Connector]
) -> dict[str, CheckTargets]:
    """What each configured connector is asked to check: the helpdesk fields the mapping
    files use, and for each tracker the routes that send tickets to it."""

    def where(entry: str, key: str = "") -> str:
        origin = mappings.origins.get(entry, str(settings.mappings_path))
        return f"{origin}: {entry}{'.' + key if key else ''}"

    fields: list[FieldUse] = []
    if mappings.stage_field:
        fields.append(
            FieldUse(where("stages", "field"), mappings.stage_field, "where the follow-up stage is shown", True)
        )
    if mappings.missing_field:
        fields.append(
            FieldUse(
                where("stages", "missing_field"), mappings.missing_field, "what a flagged ticket still lacks", True
            )
        )
    for field_id in mappings.link_fields:
        fields.append(FieldUse(where("links", "fields"), field_id, "scanned for issue keys and URLs", text=True))
    routes: dict[str, list[RouteTarget]] = {}
    for route in mappings.routes:
        entry = f"routes.{route.name}"
        for field_id in route.fields:
            fields.append(FieldUse(where(entry, "match.fields"), field_id, f"matched by {entry}"))
        if route.escalate_field:
            fields.append(FieldUse(where(entry, "escalate.field"), route.escalate_field, f"the flag of {entry}"))
        if route.severity_field:
            fields.append(FieldUse(where(entry, "severity.field"), route.severity_field, f"the severity of {entry}"))
        creates = bool(route.escalate_tag or route.escalate_field)
        routes.setdefault(route.tracker, []).append(
            RouteTarget(where(entry, "team"), route.name, route.team, creates=creates)
        )
    out: dict[str, CheckTargets] = {}
    for name, connector in connectors.items():
        if isinstance(connector, Helpdesk) and name == settings.sync.helpdesk:
            out[name] = CheckTargets(fields=tuple(fields))
        elif isinstance(connector, Tracker):
            out[name] = CheckTargets(routes=tuple(routes.get(name, ())))
        else:
            out[name] = CheckTargets()
    return out


def overlapping_keys(trackers: Mapping[str, Tracker]) -> list[Finding]:
    """A bare key one tracker recognises (``ENG-1``) that another tracker's link
    patterns also match: a ticket naming it would be linked to both."""
    compiled = {name: [re.compile(p) for p in t.link_patterns()] for name, t in trackers.items()}
    findings = []
    reported: set[tuple[str, frozenset[str]]] = set()
    for name, tracker in trackers.items():
        for prefix in sorted(tracker.key_prefixes() or ()):  # None: any prefix, none to sample
            sample = f"{prefix}-1"
            for other, patterns in compiled.items():
                if other == name or not any(p.search(sample) for p in patterns):
                    continue
                pair = (prefix.upper(), frozenset((name, other)))
                if pair in reported:
                    continue
                reported.add(pair)
                findings.append(
                    Finding(
                        "warning",
                        f"connectors.{name} and connectors.{other}",
                        f"both recognise keys such as {sample} ({tracker.label} and {trackers[other].label}): "
                        f"a ticket naming {sample} is linked to the issue in each; follow {prefix} in one of them",
                    )
                )
    return findings


def secret_file_findings(settings: Settings) -> list[Finding]:
    """A ``*_file`` secret that users other than syncd's can read."""
    findings = []
    for name, config in sorted(settings.connectors.items()):
        for key, value in config.model_dump().items():
            if not key.endswith("_file") or not isinstance(value, str):
                continue
            try:
                mode = Path(value).stat().st_mode
            except OSError:
                continue  # config loading already said it cannot be read
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                who = "every user" if mode & stat.S_IROTH else "its group"
                findings.append(
                    Finding(
                        "warning",
                        f"connectors.{name}.{key}",
                        f"{value} can be read by {who} (mode {stat.S_IMODE(mode):o}); "
                        f"make it readable by syncd's user alone: chmod 600 {value}",
                    )
                )
    return findings
