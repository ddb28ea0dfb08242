"""Every documented key of the mapping files has an effect.

The example set (mappings/examples) is loaded as shipped plus two routes that
use the GitHub and Jira state maps; each case changes one key (or sets one the
examples leave out) and shows that what syncd would plan from the same tickets
and issues differs: the route taken, the flag, the acceptance verdict, the
issue an escalation creates, the promises and their deadlines, stages, owner
gaps, the review, the links recognised, and every note and field text.

A key whose change makes the files invalid says so with a check error instead
(``expect_error``): then the key decides what else may be written (a state
map's ``kind`` decides its conditions).

``test_every_documented_key_has_a_case`` ties the cases to the schema: a key
added to the loader's models without a case here fails.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mappings.calendar import ALWAYS
from mappings.conversation import ConversationRule
from mappings.conversation_plan import IssueSide, MirrorTarget, plan_agent_note, plan_remark
from mappings.files import (
    CRITERION_MODELS,
    EXAMPLES,
    CalendarModel,
    ConversationModel,
    EscalateModel,
    LinksModel,
    MatchModel,
    PromiseModel,
    RouteModel,
    SeverityModel,
    StagesModel,
    StateMapModel,
    load_mappings,
)
from mappings.handoff_plan import (
    DemandTicket,
    demand_body,
    plan_follow_up_ticket,
    plan_handoff,
    plan_handoff_failed,
    plan_missing,
    plan_owner_gap,
    plan_promise_broken,
    plan_promise_due,
)
from mappings.links import compile_patterns
from mappings.planner import (
    LinkedTicket,
    PlanSettings,
    plan_gone_ref,
    plan_issue_gone,
    plan_issue_update,
    plan_link,
    plan_out_of_reach,
    plan_unlink,
)
from mappings.promises import (
    handoff_promises,
    new_promise,
    on_issue_resolved,
    promise_from_field,
    promises_from_tags,
)
from mappings.review import FollowUpRecord, build_review
from mappings.routes import TEMPLATE_VALUES, Mappings
from mappings.stage_plan import StageDisplay, issue_view, plan_stage
from mappings.stages import IssueView, Observation, OwnerGap, StageSpan, compute_stage, owner_gaps
from mappings.templates import DEFAULTS
from syncd.app import tracker_kinds
from syncd.errors import ConfigError
from syncd.records import (
    Comment,
    Customer,
    Issue,
    IssueRemark,
    Link,
    Organization,
    Promise,
    Ref,
    Stage,
    StateCategory,
    Ticket,
)
from syncd.writes import TicketUpdate

NOW = datetime(2026, 4, 2, 10, 0, tzinfo=timezone.utc)  # Thursday noon in Berlin, before Easter
TRACKERS = {"linear": "linear", "linear-b": "linear", "github": "github", "jira": "jira"}
SEVERITY, AREA, FOLLOW_UP_DATE, ESCALATE = "36000000010", "36000000015", "36000000020", "36000000016"

# Routes for the GitHub and Jira state maps, before the catch-all (as the example's comment shows).
EXTRA_ROUTES = """
[routes.billing]
tracker = "github"
team = "sandbox/billing"
states = "github"
[routes.billing.match]
fields = { "36000000015" = "billing" }

[routes.platform]
tracker = "jira"
team = "PLAT"
states = "jira"
[routes.platform.match]
fields = { "36000000015" = "api" }

"""
LABEL = 'label = "the customer\'s organisation"\n'
ORG = LABEL + "organization = true"
CATCH_ALL = "# Everything else goes to Engineering (the catch-all: no match table).\n"
SEVERITY_LINE = 'severity = { field = "36000000010", order = ["sev1", "sev2", "sev3", "sev4"] }\n'
APPS_TEMPLATES = (
    "templates.toml",
    "[templates.default]\n",
    '[templates.apps]\nlinked = "Apps: {issue_key}"\n\n[templates.default]\n',
)
BASE_EDITS = [("routes.toml", CATCH_ALL, EXTRA_ROUTES + CATCH_ALL)]
CONVERSATION = '[routes.product.conversation]\ndirection = "both"\nprefix = "#eng"\nignore = ["ci-bot"]\n'
# The example shows the rule commented out (off by default); the cases switch it on.
CONVERSATION_OFF = "".join("# " + line + "\n" for line in CONVERSATION.splitlines())
CONVERSATION_ON = [("routes.toml", CONVERSATION_OFF, CONVERSATION)]


def conversation_case(key: str, text: str, replacement: str) -> Case:
    """The rule switched on before and after, one key of it changed after."""
    return Case(
        key, [("routes.toml", CONVERSATION_OFF, CONVERSATION.replace(text, replacement))], before=CONVERSATION_ON
    )


@dataclass(frozen=True)
class Case:
    key: str  # the documented key, as section.key (entries' names left out)
    edits: list[tuple[str, str, str]]  # (file, text, replacement) giving the changed set
    before: list[tuple[str, str, str]] | None = None  # edits giving the set it is compared with (default: none)
    expect_error: str | None = None  # the change is refused by `syncd check` with this in the message


def insert_after(file: str, anchor: str, text: str) -> tuple[str, str, str]:
    return (file, anchor, anchor + text)


# The templates the example set writes: a word of theirs changed.
WRITTEN = {
    "needs_context": "Thanks for flagging this for product.",
    "promise_due": "Please reply to them by {due}",
    "promise_broken": "Overdue:",
}


def template_case(name: str) -> Case:
    if name in WRITTEN:
        return Case(f"templates.{name}", [("templates.toml", WRITTEN[name], "Changed: " + WRITTEN[name])])
    return Case(f"templates.{name}", [insert_after("templates.toml", "[templates.default]\n", f'{name} = "custom"\n')])


CASES = [
    # -- routes.toml
    Case("routes.tracker", [("mobile", 'tracker = "linear"', 'tracker = "linear-b"')]),
    Case("routes.team", [("mobile", 'team = "APP"', 'team = "WEB"')]),
    Case(
        "routes.match",
        [("routes.toml", '[routes.mobile.match]\ntags = ["mobile"]', "")],
        expect_error="never used: routes.mobile before it has no match and takes every ticket",
    ),
    Case("routes.match.tags", [("routes.toml", 'tags = ["mobile"]', 'tags = ["ios"]')]),
    Case("routes.match.group", [insert_after("routes.toml", "[routes.mobile.match]\n", "group = 99\n")]),
    Case("routes.match.form", [insert_after("routes.toml", "[routes.mobile.match]\n", "form = [98, 99]\n")]),
    Case(
        "routes.match.fields",
        [insert_after("routes.toml", "[routes.mobile.match]\n", 'fields = { "36000000015" = "other" }\n')],
    ),
    Case(
        "routes.escalate",
        [("mobile", 'escalate = { tag = "escalated" }\n', "")],
        expect_error="acceptance criteria are checked when a ticket is flagged for product, and this route has no",
    ),
    Case("routes.escalate.tag", [("mobile", '"escalated"', '"to_product"')]),
    Case("routes.escalate.field", [("mobile", 'tag = "escalated"', f'field = "{ESCALATE}"')]),
    Case(
        "routes.escalate.value",
        [("mobile", 'tag = "escalated"', f'field = "{SEVERITY}", value = "sev1"')],
        before=[("mobile", 'tag = "escalated"', f'field = "{SEVERITY}"')],
    ),
    Case("routes.acceptance", [("mobile", 'acceptance = "bug-report"\n', "")]),
    Case("routes.states", [("mobile", 'states = "linear"\n', "")]),
    Case(
        "routes.templates",
        [("mobile", 'team = "APP"\n', 'team = "APP"\ntemplates = "apps"\n'), APPS_TEMPLATES],
        before=[APPS_TEMPLATES],
    ),
    Case("routes.promises", [("mobile", 'promises = "standard"\n', "")]),
    Case("routes.severity", [("mobile", SEVERITY_LINE, "")]),
    Case("routes.severity.field", [("mobile", SEVERITY_LINE, SEVERITY_LINE.replace(SEVERITY, "36000000099"))]),
    Case("routes.severity.order", [("mobile", '["sev1", "sev2", "sev3", "sev4"]', '["sev4", "sev3", "sev2", "sev1"]')]),
    Case("routes.labels", [("mobile", 'labels = ["Bug", "Customer"]', 'labels = ["Customer"]')]),
    Case("routes.conversation", CONVERSATION_ON),
    conversation_case("routes.conversation.direction", 'direction = "both"', 'direction = "to_issue"'),
    conversation_case("routes.conversation.prefix", 'prefix = "#eng"', 'prefix = "#dev"'),
    conversation_case("routes.conversation.tag", 'prefix = "#eng"', 'prefix = "#eng"\ntag = "escalated"'),
    conversation_case("routes.conversation.agents", 'prefix = "#eng"', 'prefix = "#eng"\nagents = ["a9"]'),
    conversation_case("routes.conversation.engineers", 'prefix = "#eng"', 'prefix = "#eng"\nengineers = ["x"]'),
    conversation_case("routes.conversation.ignore", 'ignore = ["ci-bot"]', "ignore = []"),
    conversation_case("routes.conversation.max_length", 'prefix = "#eng"', 'prefix = "#eng"\nmax_length = 80'),
    Case("links.trackers", [insert_after("routes.toml", "[links]\n", 'trackers = ["linear"]\n')]),
    Case("links.fields", [("routes.toml", "fields = []", 'fields = ["36000000030"]')]),
    # -- stages.toml
    Case("stages.field", [("stages.toml", "field = 36000000024", "field = 36000000026")]),
    Case("stages.tag_prefix", [("stages.toml", 'tag_prefix = "syncd_stage_"', 'tag_prefix = "followup_"')]),
    Case("stages.missing_field", [("stages.toml", "missing_field = 36000000025", "missing_field = 36000000027")]),
    Case(
        "stages.broken_tag", [("stages.toml", 'broken_tag = "syncd_promise_broken"', 'broken_tag = "promise_missed"')]
    ),
    # -- states.toml
    Case(
        "states.kind",
        [("states.toml", '[states.jira]\nkind = "jira"', '[states.jira]\nkind = "linear"')],
        expect_error="states.jira.rules[0].status: unknown key; remove it (known keys here: name, show, stage, type)",
    ),
    Case(
        "states.rules",
        [
            (
                "states.toml",
                '[[states.github.rules]]\nstate = "closed"\nstage = "resolved"\nshow = "Closed: {state_name}"\n',
                "",
            )
        ],
    ),
    Case(
        "states.rules.stage",
        [("states.toml", 'name = "In Review"\nstage = "waiting"', 'name = "In Review"\nstage = "assigned"')],
    ),
    Case("states.rules.show", [("states.toml", 'show = "Fixed: {state_name}"', 'show = "Shipped ({state_name})"')]),
    Case("states.rules.name", [("states.toml", 'name = "In Review"', 'name = "In QA"')]),
    Case("states.rules.type", [("states.toml", 'type = "triage"', 'type = "backlog"')]),
    Case("states.rules.status", [("states.toml", 'status = "Waiting for support"', 'status = "Blocked"')]),
    Case("states.rules.category", [("states.toml", 'category = "done"', 'category = "new"')]),
    Case(
        "states.rules.state",
        [
            (
                "states.toml",
                'state = "closed"\nstage = "resolved"\nshow = "Closed: {state_name}"',
                'state = "open"\nstage = "resolved"\nshow = "Closed: {state_name}"',
            )
        ],
    ),
    Case("states.rules.reason", [("states.toml", 'reason = "not_planned"', 'reason = "duplicate"')]),
    # -- acceptance.toml
    Case(
        "acceptance.criteria",
        [
            (
                "acceptance.toml",
                '[[acceptance.bug-report.criteria]]\nlabel = "expected behaviour"\n',
                '[[acceptance.bug-report.criteria]]\nlabel = "what was expected"\n',
            )
        ],
    ),
    Case(
        "acceptance.criteria.label",
        [("acceptance.toml", 'label = "steps to reproduce"', 'label = "how to reproduce it"')],
    ),
    Case("acceptance.criteria.organization", [("acceptance.toml", ORG, LABEL + "priority = true")]),
    Case("acceptance.criteria.priority", [], before=[("acceptance.toml", ORG, LABEL + "priority = true")]),
    Case("acceptance.criteria.field", [("acceptance.toml", 'field = "36000000010"', 'field = "36000000011"')]),
    Case(
        "acceptance.criteria.values",
        [("acceptance.toml", 'values = ["sev1", "sev2", "sev3", "sev4"]', 'values = ["sev1"]')],
    ),
    Case(
        "acceptance.criteria.tags",
        [("acceptance.toml", ORG, LABEL + 'tags = ["has_log"]')],
        before=[("acceptance.toml", ORG, LABEL + 'tags = ["has_trace"]')],
    ),
    Case("acceptance.criteria.text", [("acceptance.toml", "text = '\\bexpected\\b|\\bshould\\b'", "text = 'wanted'")]),
    # -- promises.toml
    Case(
        "promises.calendar",
        [
            ("promises.toml", 'calendar = "support-eu"', 'calendar = "support-us"'),
            (
                "promises.toml",
                "[calendars.support-eu]",
                '[calendars.support-us]\ntime_zone = "America/New_York"\n\n[calendars.support-eu]',
            ),
        ],
        before=[
            (
                "promises.toml",
                "[calendars.support-eu]",
                '[calendars.support-us]\ntime_zone = "America/New_York"\n\n[calendars.support-eu]',
            )
        ],
    ),
    Case(
        "promises.update_within",
        [("promises.toml", 'update_within = "2 business days"', 'update_within = "3 business days"')],
    ),
    Case("promises.when_resolved", [("promises.toml", "when_resolved = true", "when_resolved = false")]),
    Case(
        "promises.respond_within",
        [("promises.toml", 'respond_within = "1 business day"', 'respond_within = "2 business days"')],
    ),
    Case(
        "promises.triage_sla",
        [("promises.toml", 'triage_sla = "4 business hours"', 'triage_sla = "40 business hours"')],
    ),
    Case(
        "promises.follow_up_window", [("promises.toml", 'follow_up_window = "7 days"', 'follow_up_window = "2 hours"')]
    ),
    Case(
        "promises.stale_after",
        [("promises.toml", 'stale_after = "10 business days"', 'stale_after = "30 business days"')],
    ),
    Case(
        "promises.follow_up_field",
        [insert_after("promises.toml", 'calendar = "support-eu"\n', f'follow_up_field = "{FOLLOW_UP_DATE}"\n')],
    ),
    Case(
        "promises.follow_up_tags",
        [("promises.toml", 'follow_up_tomorrow = "1 business day"', 'follow_up_tomorrow = "3 business days"')],
    ),
    # -- calendars (promises.toml)
    Case("calendars.time_zone", [("promises.toml", 'time_zone = "Europe/Berlin"', 'time_zone = "Asia/Tokyo"')]),
    Case(
        "calendars.days",
        [
            (
                "promises.toml",
                'days = ["mon", "tue", "wed", "thu", "fri"]',
                'days = ["mon", "tue", "wed", "thu", "fri", "sat"]',
            )
        ],
    ),
    Case("calendars.hours", [("promises.toml", 'hours = "09:00-17:00"', 'hours = "13:00-17:00"')]),
    Case("calendars.holidays", [("promises.toml", "2026-04-03, 2026-04-06, ", "")]),
    # -- templates.toml: every template, set in [templates.default]
    *(template_case(name) for name in sorted(set(TEMPLATE_VALUES) | set(DEFAULTS))),
]


def documented_keys() -> set[str]:
    """The keys the loader accepts, named as the cases name them."""
    keys = {f"routes.{k}" for k in RouteModel.model_fields}
    keys |= {f"routes.match.{k}" for k in MatchModel.model_fields}
    keys |= {f"routes.escalate.{k}" for k in EscalateModel.model_fields}
    keys |= {f"routes.severity.{k}" for k in SeverityModel.model_fields}
    keys |= {f"routes.conversation.{k}" for k in ConversationModel.model_fields}
    keys |= {f"links.{k}" for k in LinksModel.model_fields}
    keys |= {f"stages.{k}" for k in StagesModel.model_fields}
    keys |= {f"states.{k}" for k in StateMapModel.model_fields}
    for known in tracker_kinds().values():
        if known.rule_model is not None:
            keys |= {f"states.rules.{k}" for k in known.rule_model.model_fields}
    keys |= {"acceptance.criteria", "acceptance.criteria.label", "acceptance.criteria.values"}
    keys |= {f"acceptance.criteria.{k}" for k in CRITERION_MODELS}
    keys |= {f"promises.{k}" for k in PromiseModel.model_fields}
    keys |= {f"calendars.{k}" for k in CalendarModel.model_fields}
    keys |= {f"templates.{name}" for name in set(TEMPLATE_VALUES) | set(DEFAULTS)}
    return keys


def test_every_documented_key_has_a_case():
    covered = {case.key for case in CASES}
    assert documented_keys() - covered == set(), "a mapping key without a case proving its effect"
    assert covered - documented_keys() == set(), "a case for a key the loader does not know"


def test_every_documented_key_is_in_the_example_comments():
    """The examples' comments document each key a case covers (the templates by name)."""
    text = "\n".join(p.read_text() for p in sorted(EXAMPLES.glob("*.toml")))
    for key in sorted(documented_keys()):
        word = key.rsplit(".", 1)[-1]
        assert word in text, f"{key} is not documented in mappings/examples"


# -- what would be planned -----------------------------------------------------------------------


def load(tmp_path: Path, edits: list[tuple[str, str, str]]) -> Mappings:
    folder = tmp_path / "mappings"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(EXAMPLES, folder)
    for file, text, replacement in BASE_EDITS + edits:
        path = folder / ("routes.toml" if file == "mobile" else file)
        content = path.read_text()
        head, part, tail = "", content, ""
        if file == "mobile":  # inside the mobile route's table only
            start, end = content.index("[routes.mobile]\n"), content.index("[routes.mobile.match]")
            head, part, tail = content[:start], content[start:end], content[end:]
        assert part.count(text) == 1, f"{file}: {text!r} found {part.count(text)} times"
        path.write_text(head + part.replace(text, replacement) + tail)
    return load_mappings(folder, trackers=TRACKERS, kinds=tracker_kinds())


def ticket(tid: str, **kw) -> Ticket:
    base = dict(
        ref=Ref("zendesk", tid),
        key=f"#{tid}",
        url=f"https://desk.example/tickets/{tid}",
        subject=f"Ticket {tid}",
        status="open",
        updated_at=NOW,
        created_at=NOW - timedelta(days=1),
        priority="high",
        requester=Customer("u" + tid, "Hannah Berg"),
        organization=Organization("o" + tid, f"Org {tid}", "enterprise"),
        assignee_id="a1",
        assignee_name="Ada Novak",
        fields={SEVERITY: "sev2", FOLLOW_UP_DATE: "2026-04-09"},
        tags=("escalated", "has_log", "follow_up_tomorrow"),
        description="Steps: 1. open the app. Expected: it works.",
    )
    base.update(kw)
    return Ticket(**base)  # type: ignore[arg-type]


def issue(connector: str, key: str, category: StateCategory, name: str, native: dict, **kw) -> Issue:
    base = dict(
        ref=Ref(connector, key.lower()),
        key=key,
        url=f"https://tracker.example/{key}",
        title=f"Issue {key}",
        state=category,
        state_name=name,
        updated_at=NOW,
        assignee="Ravi Patel",
        team=key.split("-")[0],
        native=native,
    )
    base.update(kw)
    return Issue(**base)  # type: ignore[arg-type]


TICKETS = [
    ticket("1", tags=("mobile", "escalated", "has_log", "follow_up_tomorrow")),  # route mobile
    ticket("2", organization=None, description="It broke.", tags=("escalated",)),  # product, incomplete
    ticket("3", fields={AREA: "billing", SEVERITY: "sev4"}),  # billing (GitHub map)
    ticket("4", fields={AREA: "api", SEVERITY: "sev1"}),  # platform (Jira map)
]
ISSUES = [
    issue("linear", "APP-1", StateCategory.STARTED, "In Review", {"type": "started", "name": "In Review"}),
    issue("linear", "ENG-2", StateCategory.TRIAGE, "Triage", {"type": "triage", "name": "Triage"}, assignee=None),
    issue("linear", "ENG-3", StateCategory.COMPLETED, "Done", {"type": "completed", "name": "Done"}),
    issue(
        "github", "GH-4", StateCategory.CANCELED, "Closed (not planned)", {"state": "closed", "reason": "not_planned"}
    ),
    issue("github", "GH-5", StateCategory.COMPLETED, "Closed (completed)", {"state": "closed", "reason": "completed"}),
    issue(
        "jira",
        "PLAT-6",
        StateCategory.UNSTARTED,
        "Waiting for support",
        {"category": "new", "status": "Waiting for support"},
    ),
    issue("jira", "PLAT-7", StateCategory.COMPLETED, "Done", {"category": "done", "status": "Done"}),
]
LINKED = {"1": ["APP-1", "ENG-3"], "2": ["ENG-2"], "3": ["GH-4", "GH-5"], "4": ["PLAT-6", "PLAT-7"]}
BY_KEY = {i.key: i for i in ISSUES}
PATTERNS = {"linear": [r"(?P<ref>ENG-\d+)"], "github": [r"(?P<ref>GH-\d+)"], "jira": [r"(?P<ref>PLAT-\d+)"]}


def outcome(m: Mappings) -> dict[str, object]:
    """What syncd would plan from TICKETS and ISSUES under ``m``, as comparable text."""
    out: dict[str, object] = {}
    settings = PlanSettings(
        helpdesk="zendesk", status_field="9", mappings=m, tracker_kinds=dict(TRACKERS), qualified={}
    )
    out["links"] = (sorted(m.linking(compile_patterns(PATTERNS))), m.scanned_fields(("8",)))
    display = StageDisplay.of(m)
    for t in TICKETS:
        route = m.route_for(t)
        linked = [BY_KEY[k] for k in LINKED[t.ref.id]]
        o: dict[str, object] = {"route": route.name if route else None}
        out[t.key] = o
        # Links, issue moves, unlinks: notes and the status field.
        o["link"] = [plan_link(Link(t.ref, i.ref, "comment"), t, i, linked, settings).actions for i in linked] + [
            plan_link(Link(t.ref, i.ref, "comment"), t, replace_public(i), linked, settings).actions for i in linked
        ]
        first = linked[0]
        others = [LinkedTicket(t, tuple(linked))]
        moves = [
            replace_issue(first, state_name="In Progress", native={**first.native, "name": "In Progress"}),
            replace_issue(first, assignee="Lena"),
            replace_issue(first, state=StateCategory.STARTED, assignee="Lena"),
            replace_issue(first, state=StateCategory.COMPLETED, state_name="Done"),
        ]
        o["moves"] = [plan_issue_update(new, first, others, settings).actions for new in moves]
        o["moves_waiting"] = plan_issue_update(
            replace_issue(first, state=StateCategory.COMPLETED, state_name="Done"),
            first,
            [LinkedTicket(t, (first, BY_KEY["ENG-2"]))],
            settings,
        ).actions
        o["moves_all_closed"] = plan_issue_update(
            replace_issue(first, state=StateCategory.COMPLETED, state_name="Done"),
            first,
            [LinkedTicket(t, (first,))],
            settings,
        ).actions
        o["unlink"] = plan_unlink(Link(t.ref, first.ref, "comment"), t, first, linked[1:], settings, "by hand").actions
        o["gone"] = plan_issue_gone(Link(t.ref, first.ref, "comment"), t, first, linked[1:], settings).actions
        o["gone_ref"] = plan_gone_ref(t, first.ref.connector, first.key, first.key, settings).actions
        o["out_of_reach"] = plan_out_of_reach(replace_issue(first, team="ELSEWHERE"), [t], settings).actions
        if route is None:
            continue
        kinds = [TRACKERS[i.ref.connector] for i in linked]
        o["issue_stage"] = [issue_view(i, k, route, None)[0].stage for i, k in zip(linked, kinds)]
        o["conversation"] = conversation(t, route.conversation, linked)
        o["flagged"] = route.is_flagged(t)
        o["acceptance"] = route.acceptance(t).missing
        o["severity"] = route.severity(t)
        rule = route.promises
        promises = handoff_promises(rule, t.ref, [i.ref for i in linked], NOW, owner=t.assignee_id) if rule else []
        o["escalation"] = plan_handoff(t, route, note="a note", promises=promises, customer_count=2).actions
        o["handoff_failed"] = plan_handoff_failed(
            t,
            route=route.name,
            tracker="the tracker",
            place="APP",
            why="refused",
            template=route.templates["handoff_failed"],
            shown=TicketUpdate(),
            key="k",
        ).actions
        o["missing"] = plan_missing(t, route, ["steps", "impact"], [], missing_field=m.missing_field).plan.actions
        o["stage_write"] = [
            plan_stage(t, compute_stage(Observation(NOW, flagged=True), []), display).actions,
            display.write(Stage.WAITING),
        ]
        o["demand"] = [
            demand_body(
                first,
                [DemandTicket(x, route.severity(x), rank(route, x)) for x in TICKETS],
                promises,
                private=private,
                templates=route.templates,
                calendar=rule.calendar if rule else ALWAYS,
            )
            for private in (True, False)
        ]
        gap_ticket = OwnerGap("ticket", t.ref, NOW - timedelta(hours=3))
        gap_issue = OwnerGap("issue", first.ref, NOW - timedelta(hours=3))
        o["owner_gap_notes"] = [
            plan_owner_gap(t, gap, Stage.WAITING, route, first, triage_sla="4 business hours").actions
            for gap in (gap_ticket, gap_issue)
        ]
        o["promise_due"] = plan_promise_due(t, linked, promises or [made_promise(t)], route)
        o["followup_ticket"] = plan_follow_up_ticket(t, linked, "note", route, NOW).actions
        o["broken"] = plan_promise_broken(t, made_promise(t), route, tag=m.broken_tag).actions
        if rule is None:
            continue
        o["promises"] = [asdict(p) for p in promises]
        o["from_field"] = promise_from_field(rule, t, [], NOW)
        o["from_tags"] = [asdict(p) for p in promises_from_tags(rule, t, t.tags, [], NOW)]
        o["respond_by"] = [
            on_issue_resolved(p, NOW, respond_by=rule.due(NOW, rule.respond_within)) for p in promises if p.trigger
        ]
        wednesday = NOW - timedelta(days=1, hours=3)  # 09:00 Berlin, the day before
        views = [IssueView(first.ref, Stage.WAITING, wednesday, None, wednesday)]
        o["owner_gaps"] = owner_gaps(
            Stage.WAITING, t.ref, "a1", views, now=NOW, triage_sla=rule.triage_sla, calendar=rule.calendar
        )
        history = [(Stage.WAITING, NOW - timedelta(days=5)), (Stage.FOLLOW_UP, NOW - timedelta(days=3))]
        reopened = Observation(
            NOW,
            issues=(IssueView(first.ref, Stage.RESOLVED, NOW - timedelta(days=4)),),
            told_customer_at=NOW - timedelta(days=3),
            reopened_at=NOW - timedelta(hours=1),
        )
        o["rework"] = compute_stage(
            reopened, history, follow_up_window=rule.follow_up_window, calendar=rule.calendar
        ).stage
        record = FollowUpRecord(t.ref, t.key, route.name, (StageSpan(Stage.WAITING, NOW - timedelta(days=20)),))
        review = build_review([record], [], now=NOW, rules={route.name: rule})
        o["stale"] = [(f.ticket, f.detail) for f in review.stale]
    return out


def conversation(t: Ticket, rule: ConversationRule, linked: list[Issue]) -> list[object]:
    """What crosses between the ticket and its first issue: engineers' and a bot's comments, agents' notes."""
    first = linked[0]
    remarks = [
        IssueRemark("c1", first.key, "Fixed in 4.2.\n\n" + "More detail. " * 20, NOW, NOW, "e1", "Ravi Patel"),
        IssueRemark("c2", first.key, "build passed", NOW, NOW, "b1", "ci-bot"),
    ]
    target = [MirrorTarget(t, rule, NOW - timedelta(days=1))]
    out: list[object] = [plan_remark(r, first, None, target).actions for r in remarks]
    notes = [
        Comment("n1", "#eng only on Safari", False, "a1", NOW),
        Comment("n2", "#dev only on Firefox", False, "a1", NOW),
        Comment("n3", "a plain internal note", False, "a1", NOW),
    ]
    sides = [IssueSide(i) for i in linked]
    out += [plan_agent_note(n, t, rule, NOW - timedelta(days=1), sides, "Ada Novak").actions for n in notes]
    return out


def rank(route, t: Ticket) -> int | None:
    severity = route.severity(t)
    return route.severity_order.index(severity) if severity in route.severity_order else None


def made_promise(t: Ticket) -> Promise:
    return new_promise(t.ref, "an update", NOW - timedelta(days=2), origin="cli", due_at=NOW - timedelta(hours=1))


def replace_issue(i: Issue, **kw) -> Issue:
    return replace(i, **kw)


def replace_public(i: Issue) -> Issue:
    return replace_issue(i, public=True)


@pytest.fixture(scope="module")
def example_outcome(tmp_path_factory):
    return outcome(load(tmp_path_factory.mktemp("examples"), []))


def test_the_example_set_loads_and_plans_for_every_ticket(example_outcome):
    assert {example_outcome[t.key]["route"] for t in TICKETS} == {"mobile", "product", "billing", "platform"}  # type: ignore[index]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_changing_the_key_changes_what_is_planned(case, tmp_path, example_outcome):
    before = example_outcome if case.before is None else outcome(load(tmp_path / "before", case.before))
    if case.expect_error:
        with pytest.raises(ConfigError) as refused:
            load(tmp_path / "after", case.edits)
        assert case.expect_error in str(refused.value)
        return
    after = outcome(load(tmp_path / "after", case.edits))
    assert after != before, f"changing {case.key} changed nothing syncd plans"
