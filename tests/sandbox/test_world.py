"""The seam between the sandbox and each service's part of the seeded world (syncd.sandbox.world)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.base import connector_class, load_registry
from syncd.sandbox.runner import FAKES, HELPDESK, HELPDESKS, NEEDS, STORY_HELPDESKS, TRACKERS, build_sandbox
from syncd.sandbox.world import STORY_TICKETS, HelpdeskWorld, TrackerWorld, world_class

AT = datetime(2026, 12, 1, 21, 50, tzinfo=timezone.utc)  # the seed's present, not the machine's


def test_a_fake_names_its_part_of_the_world_in_its_role():
    """A fake may be served unseeded (no ``world``); the one it names plays its connector's role."""
    registry = load_registry()
    named = 0
    for kind, fake in FAKES.items():
        world = world_class(fake)
        if world is None:
            continue
        named += 1
        role = connector_class(kind, registry).role
        assert issubclass(world, HelpdeskWorld if role == "helpdesk" else TrackerWorld), kind
    assert named >= 2 and STORY_HELPDESKS


def test_the_story_roles_are_played_once_and_the_linked_tracker_is_always_served():
    worlds = [w for kind in TRACKERS if (w := world_class(FAKES[kind])) is not None]
    played = [w.story_role for w in worlds if issubclass(w, TrackerWorld) and w.story_role]
    assert sorted(played) == sorted(set(played)) and "linked" in played
    assert len(NEEDS) == 1 and world_class(FAKES[NEEDS[0]]).story_role == "linked"  # type: ignore[union-attr]
    assert HELPDESK in STORY_HELPDESKS and set(STORY_HELPDESKS) <= set(HELPDESKS)


@pytest.mark.parametrize("helpdesk", STORY_HELPDESKS)
def test_a_helpdesk_offering_the_story_seeds_its_tickets_and_people(helpdesk):
    sandbox = build_sandbox(clock=lambda: AT, helpdesk=helpdesk, trackers=NEEDS)
    seed = sandbox.seed
    assert seed is not None and set(STORY_TICKETS) <= set(seed.tickets)
    assert {"Priya Raman", "Tomás Ortega", "Mei Chen"} <= set(seed.agents)
    assert {"Northwind Logistics", "Acme Health"} <= set(seed.organizations)
    desk = sandbox.worlds[helpdesk]
    assert isinstance(desk, HelpdeskWorld)
    view = desk.view(seed.tickets["search"])
    assert view.subject and view.status
    # The seeded tickets already name issues of the linked tracker, in the configured link field.
    named = [desk.field(t, seed.linked_issue_field_id) for t in seed.tickets.values()]
    assert set(seed.identifiers.values()) & {n for n in named if n}


def test_a_service_seeds_the_same_records_whichever_other_trackers_are_present():
    every = build_sandbox(clock=lambda: AT)
    some = build_sandbox(clock=lambda: AT, trackers=NEEDS)
    assert every.seed is not None and some.seed is not None
    for kind in (HELPDESK, *NEEDS):
        assert every[kind].counts == some[kind].counts  # nothing served yet
    assert every.seed.tickets == some.seed.tickets and every.seed.identifiers == some.seed.identifiers
    assert every[HELPDESK].tickets == some[HELPDESK].tickets  # type: ignore[attr-defined]
    assert set(some.seed.trackers) == set(NEEDS)
    assert all(every.seed.keys(kind) for kind in TRACKERS)


def test_build_sandbox_refuses_an_unknown_helpdesk_or_a_missing_linked_tracker():
    with pytest.raises(ValueError, match="helpdesk='nosuch'"):
        build_sandbox(helpdesk="nosuch")
    with pytest.raises(ValueError, match="included"):
        build_sandbox(trackers=tuple(t for t in TRACKERS if t not in NEEDS))


def test_the_seed_names_its_objects_in_the_helpdesk_connector_table(tmp_path):
    from syncd.sandbox.runner import config_snippet

    sandbox = build_sandbox(clock=lambda: AT)
    text = config_snippet(sandbox, sandbox.seed)
    desk = sandbox.worlds[HELPDESK]
    assert sandbox.seed is not None
    for line in desk.config_lines(sandbox.seed):
        assert line in text


@pytest.mark.parametrize("helpdesk", HELPDESKS)
def test_syncd_sandbox_serves_the_chosen_helpdesk_and_names_its_seed_in_the_snippet(helpdesk):
    import io
    import threading

    from syncd.sandbox.runner import DEFAULT_PORTS, serve

    out, stop = io.StringIO(), threading.Event()
    stop.set()  # serve, describe, stop at once
    serve(ports={kind: 0 for kind in DEFAULT_PORTS}, out=out, stop=stop, helpdesk=helpdesk)
    text = out.getvalue()
    assert f'helpdesk = "{helpdesk}"' in text and f"[connectors.{helpdesk}]" in text
    others = [h for h in HELPDESKS if h != helpdesk]
    assert not any(f"[connectors.{other}]" in text for other in others)
    if helpdesk in STORY_HELPDESKS:
        assert "Seeded 20 tickets." in text


def test_syncd_sandbox_refuses_an_unknown_helpdesk_in_one_line():
    from click.testing import CliRunner

    from syncd.cli import main

    result = CliRunner().invoke(main, ["sandbox", "--helpdesk", "nosuch"])
    assert result.exit_code == 2
    assert f"'nosuch': choose from {', '.join(HELPDESKS)}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("helpdesk", STORY_HELPDESKS)
def test_the_trackers_records_do_not_depend_on_the_helpdesk(helpdesk):
    """Every helpdesk's part draws from the shared random source as the others do."""
    first = build_sandbox(clock=lambda: AT, helpdesk=STORY_HELPDESKS[0])
    other = build_sandbox(clock=lambda: AT, helpdesk=helpdesk)
    assert first.seed is not None and other.seed is not None
    for kind in TRACKERS:
        assert first.seed.keys(kind) == other.seed.keys(kind)
    assert set(first.seed.tickets) == set(other.seed.tickets)


@pytest.mark.parametrize("helpdesk", STORY_HELPDESKS)
def test_the_demo_fits_the_example_mappings_to_the_seeded_fields(helpdesk, tmp_path):
    from mappings.files import EXAMPLES
    from syncd.demo import example_mappings, fit_example_fields

    seed = build_sandbox(clock=lambda: AT, helpdesk=helpdesk, trackers=NEEDS).seed
    assert seed is not None
    directory = example_mappings(tmp_path)
    replaced = fit_example_fields(directory, seed)
    stages = (directory / "stages.toml").read_text(encoding="utf-8")
    for field_id in (seed.stage_field_id, seed.missing_field_id):
        assert repr(field_id).replace("'", '"') in stages or f"= {field_id}\n" in stages
    routes = (directory / "routes.toml").read_text(encoding="utf-8")
    assert f'severity = {{ field = "{seed.severity_field_id}"' in routes
    if not replaced:  # the examples already name this helpdesk's fields
        assert stages == (EXAMPLES / "stages.toml").read_text(encoding="utf-8")
    for old in replaced:  # the acceptance criterion on the severity field too
        assert not any(old in path.read_text(encoding="utf-8") for path in directory.glob("*.toml")), old
