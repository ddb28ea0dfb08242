"""Mapping files: the example set, routes, and one exact message per kind of mistake."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mappings import files as mapping_files
from mappings.acceptance import FieldSet
from mappings.files import EXAMPLES
from mappings.tomllines import key_lines
from syncd.app import tracker_kinds
from syncd.errors import ConfigError
from syncd.records import Issue, Organization, Ref, Stage, StateCategory, Ticket

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
TRACKERS = {"linear": "linear", "github": "github", "jira": "jira"}
KINDS = tracker_kinds()  # what the installed trackers accept, as the app hands it to the loader


def load_mappings(directory, **kw):
    return mapping_files.load_mappings(directory, kinds=KINDS, **kw)


def check_mappings(directory, **kw):
    return mapping_files.check_mappings(directory, kinds=KINDS, **kw)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return directory


def ticket(**kw) -> Ticket:
    base = dict(ref=Ref("zendesk", "1"), key="#1", url="u", subject="s", status="open", updated_at=T0)
    return Ticket(**{**base, **kw})


# -- the example set -------------------------------------------------------------------------------------


def test_example_set_loads_against_the_example_config_and_the_sandbox_trackers():
    for trackers in ({"linear": "linear"}, TRACKERS, None):
        mappings = load_mappings(EXAMPLES, trackers=trackers)
        assert [r.name for r in mappings.routes] == ["mobile", "product"]
    assert {p.name for p in mappings.files} >= {
        "routes.toml",
        "states.toml",
        "templates.toml",
        "acceptance.toml",
        "promises.toml",
    }


def test_the_example_set_is_a_folder_of_its_own_and_the_mapping_code_holds_no_mapping_file():
    """An admin copies mappings/examples/ whole; the package directory beside it is Python only."""
    assert EXAMPLES == Path(mapping_files.__file__).resolve().parent / "examples"
    assert sorted(p.suffix for p in EXAMPLES.iterdir() if p.is_file()) == [".toml"] * 6
    assert not list(EXAMPLES.parent.glob("*.toml"))


def test_example_set_ids_are_the_sandbox_seeds():
    """The demo runs on the example set: its field ids must be the sandbox's."""
    from syncd.sandbox.runner import build_sandbox

    seed = build_sandbox().seed
    route = load_mappings(EXAMPLES).route("mobile")
    assert route.severity_field == str(seed.severity_field_id)
    assert route.escalate_tag == seed.escalation_tag
    assert any(isinstance(c, FieldSet) and c.field == str(seed.severity_field_id) for c in route.criteria)


def test_example_routes_and_acceptance_on_a_sandbox_like_ticket():
    mappings = load_mappings(EXAMPLES, trackers={"linear": "linear"})
    bare = ticket(tags=("mobile", "escalated"), description="The app crashes.")
    route = mappings.route_for(bare)
    assert route.name == "mobile" and route.team == "APP" and route.is_flagged(bare)
    assert route.acceptance(bare).missing == (
        "the customer's organisation",
        "severity (the Severity field)",
        "steps to reproduce",
        "expected behaviour",
        "customer impact (who is affected and how badly)",
    )
    complete = ticket(
        tags=("mobile", "escalated"),
        organization=Organization("9", "Acme"),
        fields={"36000000010": "sev2"},
        description="Steps: open the app, pick a photo. Expected: it uploads.",
    )
    assert route.acceptance(complete, notes=["All 40 field users are blocked."]).met
    assert mappings.route_for(ticket(tags=("billing",))).name == "product"
    assert not mappings.route_for(ticket(tags=("billing",))).is_flagged(ticket(tags=("billing",)))


def test_example_state_map_and_templates():
    route = load_mappings(EXAMPLES).route("product")
    review = Issue(
        Ref("linear", "a"),
        "ENG-1",
        "u",
        "t",
        StateCategory.STARTED,
        "In Review",
        T0,
        assignee="Lena",
        native={"type": "started", "name": "In Review"},
    )
    assert route.issue_stage(review, "linear") == (Stage.WAITING, "Fix in review (Lena)")
    note = route.templates["needs_context"].render(
        {"ticket_key": "#1", "route": "product", "missing": "- severity", "missing_count": 1}
    )
    assert "- severity" in note
    assert route.promises.update_within is not None and route.promises.calendar.time_zone == "Europe/Berlin"


def test_missing_directory_gives_defaults_and_a_file_is_refused(tmp_path):
    assert load_mappings(tmp_path / "absent").routes == ()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        load_mappings(tmp_path / "file")


def test_route_matching_by_group_form_and_field_values(tmp_path):
    write(
        tmp_path,
        {
            "routes.toml": """
        [routes.vip]
        tracker = "jira"
        team = "PLAT"
        escalate = { field = 7, value = ["yes", true] }
        [routes.vip.match]
        group = 100
        form = [5, 6]
        fields = { "8" = ["api", "integrations"] }
        [routes.rest]
        tracker = "github"
        team = "sandbox/billing"
    """
        },
    )
    mappings = load_mappings(tmp_path, trackers=TRACKERS)
    hit = ticket(group_id="100", form_id="6", fields={"8": "api", "7": True})
    assert mappings.route_for(hit).name == "vip" and mappings.route_for(hit).is_flagged(hit)
    assert mappings.route_for(ticket(group_id="100", form_id="7", fields={"8": "api"})).name == "rest"
    assert mappings.route_for(ticket(group_id="100", form_id="5", fields={"8": "web"})).name == "rest"
    assert not mappings.route("vip").is_flagged(ticket(fields={"7": "no"}))


# -- one exact message per mistake ----------------------------------------------------------------------

ROUTE = """
[routes.main]
tracker = "linear"
team = "ENG"
"""

BAD = {
    "syntax error": (
        {"routes.toml": '[routes.main]\ntracker = "linear\n'},
        ["{d}/routes.toml:2: TOML syntax error at column 18: Illegal character '\\n'; fix the syntax there"],
    ),
    "unknown key with a suggestion": (
        {"routes.toml": ROUTE + 'escalation = { tag = "x" }\n'},
        ['{d}/routes.toml:4: routes.main.escalation: unknown key; did you mean "escalate"?'],
    ),
    "missing key": (
        {"routes.toml": '[routes.main]\ntracker = "linear"\n'},
        ["{d}/routes.toml:1: routes.main.team: missing; add team = ..."],
    ),
    "unknown tracker": (
        {"routes.toml": '[routes.main]\ntracker = "asana"\nteam = "ENG"\n'},
        [
            '{d}/routes.toml:2: routes.main.tracker: no tracker named "asana" in syncd.toml (sync.trackers: '
            "github, jira, linear); name one of them or add it to sync.trackers"
        ],
    ),
    "unknown template set": (
        {"routes.toml": ROUTE + 'templates = "vip"\n'},
        ['{d}/routes.toml:4: routes.main.templates: no template set named "vip"; none is defined; add [templates.vip]'],
    ),
    "state map for another tracker": (
        {"routes.toml": ROUTE + 'states = "gh"\n', "states.toml": '[states.gh]\nkind = "github"\n'},
        [
            '{d}/routes.toml:4: routes.main.states: state map "gh" is for github, but tracker "linear" is linear; '
            "name a linear state map"
        ],
    ),
    "unknown placeholder in a template": (
        {"templates.toml": '[templates.default]\n\npromise_due = "Tell them by {deadline}."\n'},
        [
            "{d}/templates.toml:3: templates.default.promise_due: placeholder {deadline} is not given to this "
            "template; it gets: due, issue_key, issue_title, issue_url, owner, promise, state_name, summary"
        ],
    ),
    "customer data in a public template": (
        {"templates.toml": '[templates.default]\nhandoff_body_public = "From {organization}"\n'},
        [
            "{d}/templates.toml:2: templates.default.handoff_body_public: placeholder {organization} is not "
            "given to this template; it gets: customer_count, opaque_ref, promise, route, severity"
        ],
    ),
    "unknown template name": (
        {"templates.toml": '[templates.default]\nneeds_contex = "Add {missing}"\n'},
        ['{d}/templates.toml:2: templates.default.needs_contex: unknown template; did you mean "needs_context"?'],
    ),
    "needs_context without the list": (
        {"templates.toml": '[templates.default]\nneeds_context = """\nPlease add the missing details.\n"""\n'},
        [
            "{d}/templates.toml:2: templates.default.needs_context: must show {missing}, the list of what the "
            "agent has to add; put {missing} in the text"
        ],
    ),
    "unpaired brace": (
        {"templates.toml": '[templates.default]\nlinked = "Linked to {issue_key"\n'},
        [
            "{d}/templates.toml:2: templates.default.linked: braces do not pair up (expected '}' before end of "
            "string); write {{ and }} for a literal brace"
        ],
    ),
    "bad linear state type": (
        {
            "states.toml": '[states.lin]\nkind = "linear"\n\n[[states.lin.rules]]\nname = "Review"\nstage = "waiting"\n'
            '\n[[states.lin.rules]]\ntype = "done"\nstage = "resolved"\n'
        },
        [
            "{d}/states.toml:9: states.lin.rules[1].type: must be 'triage', 'backlog', 'unstarted', 'started', "
            "'completed' or 'canceled' (got \"done\")"
        ],
    ),
    "jira key in a github map": (
        {"states.toml": '[states.gh]\nkind = "github"\n[[states.gh.rules]]\ncategory = "done"\nstage = "resolved"\n'},
        [
            "{d}/states.toml:4: states.gh.rules[0].category: unknown key; remove it (known keys here: reason, show, "
            "stage, state)"
        ],
    ),
    "criterion with two rules": (
        {
            "acceptance.toml": '[acceptance.bug]\n[[acceptance.bug.criteria]]\nlabel = "org"\norganization = true\n'
            "field = 12\n"
        },
        [
            "{d}/acceptance.toml:2: acceptance.bug.criteria[0]: give exactly one rule: organization = true, "
            "priority = true, field, tags or text (found organization, field)"
        ],
    ),
    "bad regular expression": (
        {"acceptance.toml": "[acceptance.bug]\n[[acceptance.bug.criteria]]\nlabel = \"steps\"\ntext = '(steps'\n"},
        [
            "{d}/acceptance.toml:4: acceptance.bug.criteria[0].text: not a valid regular expression (missing ), "
            "unterminated subpattern at position 0); fix the pattern (TOML literal strings, '...', need no "
            "escaping of backslashes)"
        ],
    ),
    "acceptance without a flag": (
        {
            "routes.toml": ROUTE + 'acceptance = "bug"\n',
            "acceptance.toml": '[acceptance.bug]\ncriteria = [{ label = "org", organization = true }]\n',
        },
        [
            "{d}/routes.toml:4: routes.main.acceptance: acceptance criteria are checked when a ticket is flagged for "
            'product, and this route has no escalate flag; add escalate = { tag = "..." } or remove acceptance'
        ],
    ),
    "business time without a calendar": (
        {"promises.toml": '[promises.std]\nupdate_within = "2 business days"\n'},
        [
            '{d}/promises.toml:2: promises.std.update_within: "2 business days" counts business time but this rule '
            'names no calendar; add calendar = "<name>" (a [calendars.<name>] with time zone and hours)'
        ],
    ),
    "bad duration and time zone": (
        {"promises.toml": '[promises.std]\ntriage_sla = "4h"\n\n[calendars.eu]\ntime_zone = "Europe/Berln"\n'},
        [
            '{d}/promises.toml:2: promises.std.triage_sla: not a duration (got "4h"); write e.g. "2 business days", '
            '"4 business hours", "3 days" or "30 minutes"',
            '{d}/promises.toml:5: calendars.eu.time_zone: unknown time zone "Europe/Berln"; use an IANA name such '
            'as "Europe/Berlin" or "America/New_York"',
        ],
    ),
    "unknown calendar": (
        {"promises.toml": '[promises.std]\ncalendar = "us"\n[calendars.eu]\ntime_zone = "Europe/Berlin"\n'},
        ['{d}/promises.toml:2: promises.std.calendar: no calendar named "us"; defined: eu'],
    ),
    "route defined twice": (
        {"a.toml": ROUTE, "b.toml": ROUTE},
        ["{d}/b.toml:1: routes.main: already defined in {d}/a.toml:1; define it once"],
    ),
    "unreachable route": (
        {"routes.toml": ROUTE + '\n[routes.vip]\ntracker = "linear"\nteam = "VIP"\nmatch = { tags = ["vip"] }\n'},
        [
            "{d}/routes.toml:5: routes.vip: never used: routes.main before it has no match and takes every ticket; "
            "move the catch-all route last"
        ],
    ),
    "github team not a repository": (
        {"routes.toml": '[routes.main]\ntracker = "github"\nteam = "billing"\n'},
        ['{d}/routes.toml:3: routes.main.team: must be a repository "owner/name" for a github tracker (got "billing")'],
    ),
    "unknown section": (
        {"routes.toml": '[route.main]\ntracker = "linear"\n'},
        ['{d}/routes.toml:1: route: unknown section; did you mean "routes"?'],
    ),
    "bad broken-promise tag and an empty label": (
        {
            "stages.toml": '[stages]\nfield = 5\nmissing_field = 6\nbroken_tag = "Promise Broken"\n',
            "routes.toml": ROUTE + 'labels = ["", "Bug"]\n',
        },
        [
            "{d}/routes.toml:4: routes.main.labels[0]: an empty label; write the name of a label the tracker has, "
            "or remove it",
            "{d}/stages.toml:4: stages.broken_tag: must be one helpdesk tag: lower-case letters, digits, _, - or : "
            'without spaces, e.g. "syncd_promise_broken"',
        ],
    ),
    "escalate both ways": (
        {"routes.toml": ROUTE + '[routes.main.escalate]\ntag = "x"\nfield = 5\n'},
        [
            '{d}/routes.toml:4: routes.main.escalate: give either tag = "..." or field = "<field id>" (with value = '
            "...), not both"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_mapping_files_get_one_exact_line_each(tmp_path, case):
    files, expected = BAD[case]
    directory = write(tmp_path / "mappings", files)
    with pytest.raises(ConfigError) as caught:
        load_mappings(directory, trackers=TRACKERS)
    assert caught.value.problems == [line.replace("{d}", str(directory)) for line in expected]


def test_every_problem_is_reported_together(tmp_path):
    directory = write(
        tmp_path,
        {
            name: text
            for case in ("unknown template name", "bad duration and time zone", "unknown tracker")
            for name, text in BAD[case][0].items()
        },
    )
    assert len(check_mappings(directory, trackers=TRACKERS)) == 4


def test_key_lines_follow_tables_arrays_and_multiline_values():
    text = textwrap.dedent('''
        # comment
        [a]
        x = """
        y = 1
        """
        list = [
          "z = 2",
        ]
        "quoted.key" = 3
        b.c = 4
        [[a.items]]
        n = 1
        [[a.items]]
        n = 2
    ''').lstrip("\n")
    lines = key_lines(text)
    assert lines[("a",)] == 2 and lines[("a", "x")] == 3 and ("a", "y") not in lines
    assert lines[("a", "list")] == 6 and ("a", "z") not in lines
    assert lines[("a", "quoted.key")] == 9 and lines[("a", "b", "c")] == 10
    assert lines[("a", "items", 1, "n")] == 14


def test_a_ticket_s_route_is_found_once_while_the_ticket_lives():
    from mappings.routes import Mappings, Route

    asked: list[str] = []

    class Counting(Route):
        def matches(self, ticket: Ticket) -> bool:
            asked.append(ticket.key)
            return super().matches(ticket)

    bugs, rest = Counting("bugs", "linear", "ENG", tags=("bug",)), Counting("rest", "linear", "ENG")
    mappings = Mappings(routes=(bugs, rest))
    one, two = ticket(tags=("bug",)), ticket(tags=())
    assert [mappings.route_for(t).name for t in (one, two, one, two, one)] == ["bugs", "rest", "bugs", "rest", "bugs"]
    assert len(asked) == 3  # one: bugs; two: bugs, then rest; never again while they live
    # An equal ticket read again is another object: its route is found again (it holds no entry for it).
    assert mappings.route_for(ticket(tags=("bug",))).name == "bugs" and len(asked) == 4
    del one, two
    import gc

    gc.collect()
    assert mappings._routes == {}  # no ticket is kept alive by the cache, and no entry outlives its ticket
    assert mappings == Mappings(routes=(bugs, rest))  # the cache is no part of what the mappings are
