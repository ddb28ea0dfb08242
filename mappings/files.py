"""The admins' mapping files: reading, validating and building :class:`~mappings.routes.Mappings`.

The one module of mappings/ that reads files (:mod:`mappings.tomllines` only
scans their text); the objects it builds live in :mod:`mappings.routes`, pure.

Every ``*.toml`` file in the mappings directory is read, in name order. Their
top-level tables are sections, and a section's entries may be spread over
files (each entry defined once):

==================  ==========================================================
``[routes.<name>]``      which tickets go to which tracker and team, the escalation flag
``[links]``              which trackers' patterns apply, extra fields to scan
``[states.<name>]``      a tracker's states → stage and the value agents see
``[templates.<set>]``    note templates with named placeholders
``[acceptance.<name>]``  the handoff acceptance criteria
``[promises.<name>]``    promise rules and SLAs
``[calendars.<name>]``   time zone, working days, business hours, holidays
``[stages]``             how a follow-up's stage is shown on the ticket (field, tag prefix)
==================  ==========================================================

:func:`load_mappings` validates everything (pydantic models, extra keys
forbidden, then the checks across files) and raises
:class:`~syncd.errors.ConfigError` with one line per problem::

    <file>:<line>: <dotted.key>: <what is wrong and what to do>
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import string
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Sequence, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from mappings import acceptance as acc
from mappings.calendar import ALWAYS, BusinessCalendar, Duration, parse_hours, weekday, zone
from mappings.conversation import DEFAULT_MAX_LENGTH, OFF, ConversationRule
from mappings.promises import PromiseRule
from mappings.routes import (
    TEMPLATE_VALUES,
    Mappings,
    Route,
    builtin_templates,
    scalar_text,
    template_values,
)
from mappings.stages import SHOW_VALUES, StateMap, StateRule
from mappings.templates import DEFAULTS, Template
from mappings.tomllines import key_lines, line_of
from syncd.errors import ConfigError, unknown_key_message
from syncd.records import Stage

EXAMPLES = Path(__file__).resolve().parent / "examples"  # the documented example set, shipped with the package
SECTIONS = ("routes", "links", "states", "templates", "acceptance", "promises", "calendars", "stages")
SINGLE_SECTIONS = ("links", "stages")  # one table each, not named entries
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


# -- the file schema -----------------------------------------------------------------------------------


def _id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _listed(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _duration(text: str) -> str:
    Duration.parse(text)
    return text


def _zone(name: str) -> str:
    zone(name)
    return name


def _regex(pattern: str) -> str:
    try:
        acc.compile_text(pattern)
    except re.error as exc:
        raise ValueError(
            f"not a valid regular expression ({exc}); fix the pattern "
            "(TOML literal strings, '...', need no escaping of backslashes)"
        ) from None
    return pattern


Id = Annotated[str, BeforeValidator(_id)]
Ids = Annotated[list[Id], BeforeValidator(_listed)]
Values = Annotated[list[Annotated[str, BeforeValidator(scalar_text)]], BeforeValidator(_listed)]
DurationText = Annotated[str, AfterValidator(_duration)]
Name = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchModel(_Model):
    tags: Annotated[list[str], BeforeValidator(_listed)] = []
    group: Ids = []
    form: Ids = []
    fields: dict[Id, Values] = {}


class EscalateModel(_Model):
    tag: str | None = None
    field: Id | None = None
    value: Values = []

    @model_validator(mode="after")
    def _one_flag(self) -> "EscalateModel":
        if (self.tag is None) == (self.field is None):
            raise ValueError(
                'give either tag = "..." or field = "<field id>" (with value = ...), not '
                + ("both" if self.tag else "neither")
            )
        if self.tag is not None and self.value:
            raise ValueError("value applies to field only; remove it or flag by field")
        return self


class SeverityModel(_Model):
    field: Id
    order: list[str] = Field(default=[], description="most severe first")


def _prefix(value: str) -> str:
    if not value.strip() or value != value.strip() or len(value) > 40:
        raise ValueError('a few characters an agent types first, without spaces around them, e.g. "#eng"')
    return value


class ConversationModel(_Model):
    direction: Literal["none", "to_ticket", "to_issue", "both"] = "none"
    prefix: Annotated[str, AfterValidator(_prefix)] | None = None
    tag: Annotated[str, AfterValidator(lambda v: _tag(v))] | None = None
    agents: Ids = []
    engineers: Ids = []
    ignore: Ids = []
    max_length: int = Field(default=DEFAULT_MAX_LENGTH, ge=80, le=60000)

    @model_validator(mode="after")
    def _selects(self) -> "ConversationModel":
        to_issue = self.direction in ("to_issue", "both")
        if to_issue and not (self.prefix or self.tag):
            raise ValueError(
                'an agent\'s notes go to the issues only when selected: give prefix = "#eng" or tag = "..." '
                'or set direction = "to_ticket"'
            )
        if not to_issue and (self.prefix or self.tag):
            raise ValueError(
                "prefix and tag select agents' notes for the issues, and direction does not send any there; "
                'set direction = "to_issue" or "both", or remove them'
            )
        return self

    def build(self) -> ConversationRule:
        return ConversationRule(
            self.direction,
            self.prefix,
            self.tag,
            tuple(self.agents),
            tuple(self.engineers),
            tuple(self.ignore),
            self.max_length,
        )


class RouteModel(_Model):
    tracker: Name
    team: Name
    match: MatchModel | None = None
    escalate: EscalateModel | None = None
    acceptance: Name | None = None
    states: Name | None = None
    templates: Name | None = None
    promises: Name | None = None
    severity: SeverityModel | None = None
    labels: list[Annotated[str, AfterValidator(_label)]] = []  # put on issues an escalation creates
    conversation: ConversationModel | None = None  # comments crossing over (off by default)


class LinksModel(_Model):
    trackers: list[Name] | None = None
    fields: Ids = []


TAG_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_:-]*$")


def _tag_prefix(value: str) -> str:
    if not TAG_PREFIX_RE.match(value):
        raise ValueError(
            "must be lower-case letters, digits, _, - or : without spaces (a helpdesk tag "
            'begins with it), e.g. "syncd_stage_"'
        )
    return value


def _tag(value: str) -> str:
    if not TAG_PREFIX_RE.match(value):
        raise ValueError(
            "must be one helpdesk tag: lower-case letters, digits, _, - or : without spaces, "
            'e.g. "syncd_promise_broken"'
        )
    return value


def _label(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty label; write the name of a label the tracker has, or remove it")
    return value


class StagesModel(_Model):
    field: Id | None = None
    tag_prefix: Annotated[str, AfterValidator(_tag_prefix)] | None = None
    missing_field: Id | None = None  # a text field that always shows what a flagged ticket still lacks
    broken_tag: Annotated[str, AfterValidator(_tag)] = "syncd_promise_broken"

    @model_validator(mode="after")
    def _shown_somewhere(self) -> "StagesModel":
        if self.field is None and self.tag_prefix is None:
            raise ValueError('say where stages are shown: field = "<field id>" and/or tag_prefix = "syncd_stage_"')
        return self


class StateMapModel(_Model):
    kind: Any  # a tracker kind with a state rule model: checked against the kinds given to the loader
    rules: list[dict[str, Any]] = []


@dataclass(frozen=True)
class TrackerKind:
    """What the loader knows of one tracker kind, handed in by the app from its connector class.

    ``rule_model`` validates one ``[states.<name>]`` rule (a pydantic model with
    ``stage``, ``show`` and the tracker's own condition fields); ``conditions``
    names those fields, which are the keys of ``Issue.native``; ``team_pattern``
    is a regex a route's ``team`` must match and the words that describe it."""

    rule_model: type[BaseModel] | None = None
    conditions: tuple[str, ...] = ()
    team_pattern: tuple[str, str] | None = None


class _CriterionModel(_Model):
    label: Name


class OrganizationKnownModel(_CriterionModel):
    organization: Literal[True]

    def build(self) -> acc.OrganizationKnown:
        return acc.OrganizationKnown(self.label)


class PrioritySetModel(_CriterionModel):
    priority: Literal[True]

    def build(self) -> acc.PrioritySet:
        return acc.PrioritySet(self.label)


class FieldSetModel(_CriterionModel):
    field: Id
    values: Values = []

    def build(self) -> acc.FieldSet:
        return acc.FieldSet(self.label, self.field, tuple(self.values))


class HasTagModel(_CriterionModel):
    tags: Annotated[list[str], BeforeValidator(_listed), Field(min_length=1)]

    def build(self) -> acc.HasTag:
        return acc.HasTag(self.label, tuple(self.tags))


class TextMatchesModel(_CriterionModel):
    text: Annotated[str, AfterValidator(_regex)]

    def build(self) -> acc.TextMatches:
        return acc.TextMatches(self.label, acc.compile_text(self.text))


class _NoRuleModel(_Model):
    """A criterion with no rule, or more than one, or values without field: every
    key is known here, so a misspelt one gets its suggestion, then which rules were found."""

    label: Name
    organization: Literal[True] | None = None
    priority: Literal[True] | None = None
    field: Id | None = None
    values: Values = []
    tags: Annotated[list[str], BeforeValidator(_listed)] = []
    text: Annotated[str, AfterValidator(_regex)] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "_NoRuleModel":
        given = [k for k in CRITERION_MODELS if k in self.model_fields_set]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(
                f"give exactly one rule: organization = true, priority = true, field, tags or text ({found})"
            )
        raise ValueError("values applies to field only; remove it or check a field")


# A criterion's kind (its one rule key) -> the model of that kind.
CRITERION_MODELS: dict[str, type[_CriterionModel]] = {
    "organization": OrganizationKnownModel,
    "priority": PrioritySetModel,
    "field": FieldSetModel,
    "tags": HasTagModel,
    "text": TextMatchesModel,
}
_NO_RULE = "no rule"
_CRITERION_TAGS: dict[str, type[_Model]] = {**CRITERION_MODELS, _NO_RULE: _NoRuleModel}


def _criterion_kind(data: Any) -> str | None:
    """The discriminator: the one rule key a criterion table has (None: not a table)."""
    if not isinstance(data, dict):
        return None
    given = [k for k in CRITERION_MODELS if k in data]
    if len(given) != 1 or ("values" in data and given != ["field"]):
        return _NO_RULE
    return given[0]


CriterionModel = Annotated[
    Union[
        Annotated[OrganizationKnownModel, Tag("organization")],
        Annotated[PrioritySetModel, Tag("priority")],
        Annotated[FieldSetModel, Tag("field")],
        Annotated[HasTagModel, Tag("tags")],
        Annotated[TextMatchesModel, Tag("text")],
        Annotated[_NoRuleModel, Tag(_NO_RULE)],
    ],
    Discriminator(_criterion_kind, custom_error_type="model_type", custom_error_context={"class_name": "criterion"}),
]


class AcceptanceModel(_Model):
    criteria: list[CriterionModel] = Field(min_length=1)


class CalendarModel(_Model):
    time_zone: Annotated[str, AfterValidator(_zone)]
    days: list[str] = ["mon", "tue", "wed", "thu", "fri"]
    hours: str = "09:00-17:00"
    holidays: list[date] = []

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('must name at least one working day, e.g. ["mon", "tue"]')
        for name in value:
            weekday(name)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    def build(self) -> BusinessCalendar:
        opens, closes = parse_hours(self.hours)
        return BusinessCalendar(
            self.time_zone, frozenset(weekday(d) for d in self.days), opens, closes, frozenset(self.holidays)
        )


class PromiseModel(_Model):
    calendar: Name | None = None
    update_within: DurationText | None = None
    when_resolved: bool = True
    respond_within: DurationText | None = None
    triage_sla: DurationText | None = None
    follow_up_window: DurationText | None = None
    stale_after: DurationText | None = None
    follow_up_field: Id | None = None
    follow_up_tags: dict[str, DurationText] = {}

    def durations(self) -> dict[str, Duration]:
        out = {
            k: Duration.parse(getattr(self, k))
            for k in ("update_within", "respond_within", "triage_sla", "follow_up_window", "stale_after")
            if getattr(self, k) is not None
        }
        out.update({f"follow_up_tags.{tag}": Duration.parse(text) for tag, text in self.follow_up_tags.items()})
        return out


ENTRY_MODELS: dict[str, type[_Model]] = {
    "routes": RouteModel,
    "states": StateMapModel,
    "acceptance": AcceptanceModel,
    "promises": PromiseModel,
    "calendars": CalendarModel,
}


# -- loading ------------------------------------------------------------------------------------------


class _Source:
    """One mapping file: its label, parsed data and key lines."""

    def __init__(self, label: str, data: dict[str, Any], lines: dict[tuple[Any, ...], int]):
        self.label, self.data, self.lines = label, data, lines


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, int, str]] = []

    def add(self, source: _Source | str, path: Sequence[Any], message: str, line: int | None = None) -> None:
        label = source if isinstance(source, str) else source.label
        if line is None and not isinstance(source, str):
            line = line_of(source.lines, path)
        where = f"{label}:{line}" if line else label
        key = _dotted(path)
        self.items.append((label, line or 0, f"{where}: {key}: {message}" if key else f"{where}: {message}"))

    def lines(self) -> list[str]:
        seen: set[str] = set()
        out = []
        for _, _, text in sorted(self.items, key=lambda item: (item[0], item[1])):
            if text not in seen:
                seen.add(text)
                out.append(text)
        return out


def load_mappings(
    directory: str | Path, *, trackers: Mapping[str, str] | None = None, kinds: Mapping[str, TrackerKind] | None = None
) -> Mappings:
    """Read and validate every ``*.toml`` in ``directory``.

    ``trackers`` maps the tracker connector names of syncd.toml to their
    kinds; with it, routes and link rules are checked against them.
    ``kinds`` says what each installed tracker kind accepts (its state rules
    and team form, from its connector class); a state map names one of them.
    A directory that does not exist gives the built-in defaults (no routes).
    """
    directory = Path(directory)
    if not directory.exists():
        return Mappings()
    if not directory.is_dir():
        raise ConfigError(
            [f"{directory}: not a directory; sync.mappings must name the directory holding the mapping files (*.toml)"]
        )
    problems = _Problems()
    sources = [s for s in (_read(path, problems) for path in sorted(directory.glob("*.toml"))) if s]
    entries = _collect(sources, problems)
    mappings = _build(entries, trackers, kinds or {}, problems)
    if problems.items:
        raise ConfigError(problems.lines())
    return dataclasses.replace(mappings, files=tuple(Path(s.label) for s in sources), origins=_origins(entries))


def _origins(entries: dict[str, dict[str | None, _Entry]]) -> dict[str, str]:
    """Each entry's dotted name -> ``file:line`` where it is written."""
    out = {}
    for section, named in entries.items():
        for name, (source, _) in named.items():
            path = (section,) if name is None else (section, name)
            line = line_of(source.lines, path)
            out[_dotted(path)] = f"{source.label}:{line}" if line else source.label
    return out


def _read(path: Path, problems: _Problems) -> _Source | None:
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add(
            label,
            (),
            f"cannot read it ({exc.strerror or type(exc).__name__}); make it readable by the user running syncd",
        )
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(label, (), "not UTF-8 text; save the file as UTF-8", line=raw[: exc.start].count(b"\n") + 1)
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"^(?P<detail>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", str(exc), re.S)
        if found:
            problems.add(
                label,
                (),
                f"TOML syntax error at column {found['col']}: {found['detail']}; fix the syntax there",
                line=int(found["line"]),
            )
        else:
            problems.add(label, (), f"TOML syntax error: {exc}; fix the syntax")
        return None
    return _Source(label, data, key_lines(text))


# An entry is (section, name) for named sections, (section, None) for [links].
_Entry = tuple[_Source, Any]


def _collect(sources: list[_Source], problems: _Problems) -> dict[str, dict[str | None, _Entry]]:
    entries: dict[str, dict[str | None, _Entry]] = {s: {} for s in SECTIONS}
    for source in sources:
        for section, value in source.data.items():
            if section not in SECTIONS:
                close = difflib.get_close_matches(section, SECTIONS, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"known sections: {', '.join(SECTIONS)}"
                problems.add(source, (section,), f"unknown section; {hint}")
                continue
            if not isinstance(value, dict):
                problems.add(
                    source,
                    (section,),
                    f"must be a table: write [{section}{'' if section in SINGLE_SECTIONS else '.<name>'}]",
                )
                continue
            if section in SINGLE_SECTIONS:
                _once(entries[section], None, source, value, (section,), problems)
                continue
            for name, entry in value.items():
                if not NAME_RE.match(name):
                    problems.add(
                        source,
                        (section, name),
                        "names may hold letters, digits, - and _ only, starting with a letter or digit; rename it",
                    )
                    continue
                if not isinstance(entry, dict):
                    problems.add(
                        source, (section, name), f"must be a table: write [{section}.{name}] with its keys under it"
                    )
                    continue
                _once(entries[section], name, source, entry, (section, name), problems)
    return entries


def _once(
    into: dict[str | None, _Entry],
    name: str | None,
    source: _Source,
    value: Any,
    path: tuple[Any, ...],
    problems: _Problems,
) -> None:
    if name in into:
        first = into[name][0]
        problems.add(source, path, f"already defined in {first.label}:{line_of(first.lines, path)}; define it once")
        return
    into[name] = (source, value)


def _validate(model: type[BaseModel], source: _Source, data: Any, path: tuple[Any, ...], problems: _Problems) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = path + tuple(p for i, p in enumerate(error["loc"]) if not _is_kind(error["loc"], i))
            problems.add(source, loc, _message(error, model))
        return None


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind, loc = error["type"], error["loc"]
    key = str(loc[-1]) if loc else ""
    parent = _model_at(model, loc[:-1])
    if kind == "missing":
        return f"missing; add {key} = ..."
    if kind == "extra_forbidden":
        return unknown_key_message(key, parent.model_fields if parent else ())
    if kind == "too_short":
        return "must not be empty"
    if kind in ("model_type", "dict_type"):
        return "must be a table"
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) and kind != "value_error":
        message += f" (got {json.dumps(value, ensure_ascii=False)})"
    return message


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    current: Any = model
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if _is_kind(loc, i):  # the criterion's kind picks its model
            current = _CRITERION_TAGS.get(part)
            if current is None:
                return None
            continue
        field_info = current.model_fields.get(part) if isinstance(part, str) else None
        if field_info is None:
            return None
        nested = [a for a in _flatten(field_info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return None
        current = nested[0]
    return current


def _is_kind(loc: Sequence[Any], i: int) -> bool:
    """``loc[i]`` is the discriminator tag pydantic puts after ``criteria[n]``, not a key of the file."""
    return i >= 2 and loc[i - 2] == "criteria" and isinstance(loc[i - 1], int)


def _flatten(annotation: Any) -> list[Any]:
    out = [annotation]
    for arg in get_args(annotation):
        out += _flatten(arg)
    return out


# -- building and checks across files -------------------------------------------------------------------


def _build(
    entries: dict[str, dict[str | None, _Entry]],
    trackers: Mapping[str, str] | None,
    kinds: Mapping[str, TrackerKind],
    problems: _Problems,
) -> Mappings:
    models: dict[str, dict[str, tuple[_Source, Any]]] = {}
    for section, model in ENTRY_MODELS.items():
        models[section] = {}
        for name, (source, data) in entries[section].items():
            assert name is not None  # only the single sections ([links], [stages]) hold the None key
            valid = _validate(model, source, data, (section, name), problems)
            if valid is not None:
                models[section][name] = (source, valid)

    calendars = {name: m.build() for name, (_, m) in models["calendars"].items()}
    promises = _promise_rules(models["promises"], entries["calendars"], calendars, problems)
    states = _state_maps(models["states"], kinds, problems)
    templates = _template_sets(entries["templates"], problems)
    criteria = {name: tuple(c.build() for c in m.criteria) for name, (_, m) in models["acceptance"].items()}

    links = LinksModel()
    if None in entries["links"]:
        source, data = entries["links"][None]
        valid = _validate(LinksModel, source, data, ("links",), problems)
        if valid is not None:
            links = valid
            if trackers is not None:
                for i, name in enumerate(valid.trackers or []):
                    if name not in trackers:
                        problems.add(source, ("links", "trackers", i), _unknown_tracker(name, trackers))

    stages = None
    if None in entries["stages"]:
        source, data = entries["stages"][None]
        stages = _validate(StagesModel, source, data, ("stages",), problems)

    routes = []
    catch_all: str | None = None
    for name, (source, route) in models["routes"].items():
        path = ("routes", name)
        check = _Refs(source, path, problems)
        kind = trackers.get(route.tracker) if trackers is not None else None
        if trackers is not None and kind is None:
            problems.add(source, path + ("tracker",), _unknown_tracker(route.tracker, trackers))
        if kind is not None:
            _check_team(source, path, kind, kinds.get(kind), route.team, problems)
        state_map = check.ref("states", route.states, states, entries["states"])
        if state_map is not None and kind is not None and state_map.kind != kind:
            problems.add(
                source,
                path + ("states",),
                f'state map "{route.states}" is for {state_map.kind}, but '
                f'tracker "{route.tracker}" is {kind}; name a {kind} state map',
            )
        template_set = check.ref("templates", route.templates, templates, entries["templates"])
        route_criteria = check.ref("acceptance", route.acceptance, criteria, entries["acceptance"])
        promise_rule = check.ref("promises", route.promises, promises, entries["promises"])
        if route.acceptance and route.escalate is None:
            problems.add(
                source,
                path + ("acceptance",),
                "acceptance criteria are checked when a ticket is flagged "
                "for product, and this route has no escalate flag; add "
                'escalate = { tag = "..." } or remove acceptance',
            )
        if catch_all is not None:
            problems.add(
                source,
                path,
                f"never used: routes.{catch_all} before it has no match and takes every "
                "ticket; move the catch-all route last",
            )
        match = route.match or MatchModel()
        built = Route(
            name=name,
            tracker=route.tracker,
            team=route.team,
            tags=tuple(match.tags),
            groups=tuple(match.group),
            forms=tuple(match.form),
            fields={k: tuple(v) for k, v in match.fields.items()},
            escalate_tag=route.escalate.tag if route.escalate else None,
            escalate_field=route.escalate.field if route.escalate else None,
            escalate_values=tuple(route.escalate.value) if route.escalate else (),
            criteria=route_criteria or (),
            states=state_map,
            templates={
                **builtin_templates(),
                **templates.get("default", {}),
                **(template_set if route.templates and template_set else {}),
            },
            promises=promise_rule,
            severity_field=route.severity.field if route.severity else None,
            severity_order=tuple(route.severity.order) if route.severity else (),
            labels=tuple(route.labels),
            conversation=route.conversation.build() if route.conversation else OFF,
        )
        if built.catch_all and catch_all is None:
            catch_all = name
        routes.append(built)

    return Mappings(
        routes=tuple(routes),
        link_trackers=tuple(links.trackers) if links.trackers is not None else None,
        link_fields=tuple(links.fields),
        states=states,
        templates=templates,
        promises=promises,
        calendars=calendars,
        stage_field=stages.field if stages else None,
        stage_tag_prefix=stages.tag_prefix if stages else None,
        missing_field=stages.missing_field if stages else None,
        broken_tag=stages.broken_tag if stages else "syncd_promise_broken",
    )


class _Refs:
    """Checks a route's reference to a named entry of another section."""

    def __init__(self, source: _Source, path: tuple[Any, ...], problems: _Problems):
        self.source, self.path, self.problems = source, path, problems

    def ref(
        self,
        section: str,
        name: str | None,
        built: Mapping[str, Any],
        defined: Mapping[Any, Any],
        key: str | None = None,
    ) -> Any:
        if name is None:
            return None
        if name in built:
            return built[name]
        if name not in defined:  # defined but invalid: its own problems are reported
            names = sorted(n for n in defined if n is not None)
            close = difflib.get_close_matches(name, names, n=1)
            hint = (
                f'did you mean "{close[0]}"?'
                if close
                else (f"defined: {', '.join(names)}" if names else f"none is defined; add [{section}.{name}]")
            )
            self.problems.add(
                self.source, self.path + (key or section,), f'no {_SECTION_NOUN[section]} named "{name}"; {hint}'
            )
        return None


_SECTION_NOUN = {
    "states": "state map",
    "templates": "template set",
    "acceptance": "acceptance criteria set",
    "promises": "promise rule",
    "calendars": "calendar",
}


def _unknown_tracker(name: str, trackers: Mapping[str, str]) -> str:
    known = ", ".join(sorted(trackers)) or "none"
    return (
        f'no tracker named "{name}" in syncd.toml (sync.trackers: {known}); name one of them or add it to sync.trackers'
    )


def _check_team(
    source: _Source, path: tuple[Any, ...], kind: str, known: TrackerKind | None, team: str, problems: _Problems
) -> None:
    form = known.team_pattern if known else None
    if form and not re.match(form[0], team):
        problems.add(source, path + ("team",), f"must be {form[1]} for a {kind} tracker (got {json.dumps(team)})")


def _promise_rules(
    models: Mapping[str, tuple[_Source, PromiseModel]],
    calendar_entries: Mapping[Any, Any],
    calendars: Mapping[str, BusinessCalendar],
    problems: _Problems,
) -> dict[str, PromiseRule]:
    out = {}
    for name, (source, model) in models.items():
        path = ("promises", name)
        calendar = ALWAYS
        if model.calendar is not None:
            calendar = _Refs(source, path, problems).ref(
                "calendars", model.calendar, calendars, calendar_entries, key="calendar"
            )
        durations = model.durations()
        if model.calendar is None:
            for key, duration in durations.items():
                if duration.business:
                    problems.add(
                        source,
                        path + tuple(key.split(".", 1)),
                        f'"{duration}" counts business time but this rule names no calendar; add '
                        'calendar = "<name>" (a [calendars.<name>] with time zone and hours)',
                    )
        if calendar is None:
            continue
        out[name] = PromiseRule(
            name=name,
            calendar=calendar,
            update_within=durations.get("update_within"),
            when_resolved=model.when_resolved,
            respond_within=durations.get("respond_within"),
            triage_sla=durations.get("triage_sla"),
            follow_up_window=durations.get("follow_up_window"),
            stale_after=durations.get("stale_after"),
            follow_up_field=model.follow_up_field,
            follow_up_tags={tag: durations[f"follow_up_tags.{tag}"] for tag in model.follow_up_tags},
        )
    return out


def _state_maps(
    models: Mapping[str, tuple[_Source, StateMapModel]], kinds: Mapping[str, TrackerKind], problems: _Problems
) -> dict[str, StateMap]:
    out = {}
    choices = [k for k, known in kinds.items() if known.rule_model is not None]
    for name, (source, model) in models.items():
        known = kinds.get(model.kind) if isinstance(model.kind, str) else None
        if known is None or known.rule_model is None:
            problems.add(source, ("states", name, "kind"), _one_of(choices, model.kind))
            continue
        rules = []
        ok = True
        for i, raw in enumerate(model.rules):
            path = ("states", name, "rules", i)
            rule = _validate(known.rule_model, source, raw, path, problems)
            if rule is None:
                ok = False
                continue
            show = _template_problems(source, path + ("show",), "show", rule.show, SHOW_VALUES, problems)
            if show is None:
                ok = False
                continue
            when = tuple((k, str(getattr(rule, k))) for k in known.conditions if getattr(rule, k) is not None)
            rules.append(StateRule(when, Stage(rule.stage), show))
        if ok:
            out[name] = StateMap(name, model.kind, tuple(rules))
    return out


def _one_of(choices: Sequence[str], value: Any) -> str:
    """Pydantic's words for a value outside a Literal, for a choice known only at load time."""
    quoted = [f"'{c}'" for c in choices]
    words = (
        f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else "".join(quoted) or "a known tracker kind"
    )
    message = f"must be {words}"
    if isinstance(value, (str, int, float, bool)):
        message += f" (got {json.dumps(value, ensure_ascii=False)})"
    return message


def _template_sets(entries: Mapping[Any, _Entry], problems: _Problems) -> dict[str, dict[str, Template]]:
    out: dict[str, dict[str, Template]] = {}
    for set_name, (source, table) in entries.items():
        templates: dict[str, Template] = {}
        for name, text in table.items():
            path = ("templates", set_name, name)
            values = template_values(name)
            if values is None:
                known = sorted(set(TEMPLATE_VALUES) | set(DEFAULTS))
                close = difflib.get_close_matches(name, known, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"known templates: {', '.join(known)}"
                problems.add(source, path, f"unknown template; {hint}")
                continue
            if not isinstance(text, str):
                problems.add(source, path, 'must be a string: write name = """...""" for several lines')
                continue
            template = _template_problems(source, path, name, text, values, problems)
            if template is None:
                continue
            if name == "needs_context" and "missing" not in template.placeholders:
                problems.add(
                    source,
                    path,
                    "must show {missing}, the list of what the agent has to add; put {missing} in the text",
                )
                continue
            templates[name] = template
        out[set_name] = templates
    return out


def _template_problems(
    source: _Source, path: tuple[Any, ...], name: str, text: str, values: frozenset[str], problems: _Problems
) -> Template | None:
    """The template, or None after reporting why it cannot be used."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        problems.add(source, path, f"braces do not pair up ({exc}); write {{{{ and }}}} for a literal brace")
        return None
    given = ", ".join(sorted(values))
    bad = False
    for _, placeholder, spec, conversion in parts:
        if placeholder is None:
            continue
        if not placeholder.isidentifier():
            problems.add(source, path, f"placeholder {{{placeholder}}} is not a name; use one of: {given}")
            bad = True
        elif spec or conversion:
            problems.add(
                source, path, f"placeholder {{{placeholder}}} has a format or conversion; write it as {{{placeholder}}}"
            )
            bad = True
        elif placeholder not in values:
            close = difflib.get_close_matches(placeholder, sorted(values), n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            problems.add(
                source, path, f"placeholder {{{placeholder}}} is not given to this template; {hint}it gets: {given}"
            )
            bad = True
    return None if bad else Template(name, text)


def _dotted(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def check_mappings(
    directory: str | Path, *, trackers: Mapping[str, str] | None = None, kinds: Mapping[str, TrackerKind] | None = None
) -> list[str]:
    """The problems :func:`load_mappings` would raise, as lines (empty when the mappings are good)."""
    try:
        load_mappings(directory, trackers=trackers, kinds=kinds)
    except ConfigError as exc:
        return list(exc.problems)
    return []


__all__ = [
    "EXAMPLES",
    "TrackerKind",
    "check_mappings",
    "load_mappings",
    "template_values",
]
