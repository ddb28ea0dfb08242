"""The sandbox's seeded world, assembled from each service's own part.

A small B2B SaaS support desk (four customer organisations on different
plans, eight customers, three agents) and a product team of four engineers.
Who the people are, and the support desk's tickets (:data:`TICKETS`), are
common to every service and live here; what each service holds (its
tickets as it writes them, issues, teams, repositories, projects, custom
fields) is that service's part, written in its own words, in its folder
(``connectors/<kind>/seed.py``, a :class:`ServiceWorld` that the fake names in
its ``world`` class attribute).

How the parts are put together, the same way for any set of fakes:

1. every part's :meth:`ServiceWorld.setup` (fields, people, teams) at the
   start of the history, three weeks back;
2. the records of the tracker whose issues the helpdesk's seeded tickets
   already name (``ServiceWorld.linked_from_seed``), then the helpdesk's
   tickets, on one shared run of moments;
3. then each other tracker's records, on its own run of later moments.

Records are back-dated through each fake's clock, so the export and the
issue feeds see a believable history. The same ``rng_seed`` always gives the
same data, and one service's data does not depend on which other trackers
are present.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from syncd.sandbox.world import ServiceWorld

ORGANIZATIONS = [
    # name, plan, domain
    ("Northwind Logistics", "enterprise", "northwind.example"),
    ("Acme Health", "business", "acmehealth.example"),
    ("Fjord Analytics", "business", "fjord.example"),
    ("Bluebird Studio", "starter", "bluebird.example"),
]

CUSTOMERS = [
    # name, email local part, organisation
    ("Hannah Lindqvist", "hannah", "Northwind Logistics"),
    ("Marcus Webb", "marcus.webb", "Northwind Logistics"),
    ("Dr. Aisha Karimi", "a.karimi", "Acme Health"),
    ("Jonas Berg", "jonas", "Acme Health"),
    ("Ingrid Solberg", "ingrid", "Fjord Analytics"),
    ("Pedro Alves", "pedro", "Fjord Analytics"),
    ("Chloe Martin", "chloe", "Bluebird Studio"),
    ("Kenji Watanabe", "kenji", "Bluebird Studio"),
]

AGENTS = [("Priya Raman", "priya"), ("Tomás Ortega", "tomas"), ("Mei Chen", "mei")]

ENGINEERS = [("Ada Novak", "ada"), ("Ravi Patel", "ravi"), ("Lena Fischer", "lena"), ("Sam Okafor", "sam")]

ESCALATION_TAG = "escalated"

# Moments each tracker seeded after the helpdesk gets (drawn per registered
# tracker, present or not, so that its data does not depend on the others).
LATER_MOMENTS = 20


# The support desk's tickets, the story's and common to every helpdesk; each
# helpdesk's part writes them in its own words. Statuses are the canonical
# ones (connectors.base.TICKET_STATUSES), priorities low/normal/high/urgent.
TICKETS = [
    # key, customer email local part, subject, description, status, priority, tags, severity, area, linked issue key
    (
        "sso",
        "hannah",
        "SSO login loops back to the sign-in page",
        "Since this morning about half of our dispatchers cannot log in. After Okta they land on the sign-in "
        "page again, forever. Steps: open the app, click 'Sign in with SSO', authenticate in Okta. Expected: "
        "the dashboard. Happens in Chrome and Edge.",
        "open",
        "high",
        ["sso", "escalated"],
        "sev2",
        "auth",
        "sso",
    ),
    (
        "csv",
        "a.karimi",
        "CSV export times out for large reports",
        "Exporting the monthly claims report (about 60,000 rows) fails with 'Gateway timeout' after 30 "
        "seconds. Smaller date ranges work. We need the full month for our auditors by Friday.",
        "open",
        "normal",
        ["export", "escalated"],
        "sev3",
        "reporting",
        "csv",
    ),
    (
        "webhook",
        "ingrid",
        "Webhook deliveries keep retrying after our endpoint was removed",
        "We deleted our old receiver and it now answers 410, but your side keeps retrying every few minutes "
        "and our logs are full of it. Expected: you stop after a 410.",
        "pending",
        "normal",
        ["webhooks", "escalated"],
        "sev4",
        "integrations",
        "webhook",
    ),
    (
        "vat",
        "pedro",
        "Invoice PDF shows the wrong VAT rate for Norway",
        "Our October invoice lists 20% VAT; Norway is 25%. Our finance team cannot book it as it is.",
        "open",
        "normal",
        ["billing"],
        None,
        "billing",
        None,
    ),
    (
        "android",
        "chloe",
        "App crashes when I upload photos on my new phone",
        "The app closes as soon as I pick a photo to attach. Pixel 8, Android 14, app version 5.3.1. It "
        "worked on my old phone.",
        "open",
        "urgent",
        ["mobile", "escalated"],
        "sev2",
        "mobile",
        "android",
    ),
    (
        "reset",
        "jonas",
        "Password reset email never arrives",
        "I requested a reset three times and got nothing, not even in spam.",
        "solved",
        "normal",
        ["email"],
        None,
        "auth",
        None,
    ),
    (
        "safari",
        "marcus.webb",
        "Dashboard charts are blank in Safari",
        "All charts on the overview page are empty in Safari 17 on macOS Sonoma; Chrome is fine.",
        "open",
        "normal",
        ["dashboard", "escalated"],
        "sev3",
        "web",
        "safari",
    ),
    (
        "patch500",
        "hannah",
        "API returns 500 when updating a shipment with empty notes",
        'PATCH /v2/shipments/{id} with {"notes": ""} returns HTTP 500. Expected 200 and notes cleared. '
        "Our integration sends this every time a dispatcher clears the field.",
        "open",
        "high",
        ["api", "escalated"],
        "sev2",
        "api",
        "patch500",
    ),
    (
        "archive",
        "kenji",
        "Can we archive many projects at once?",
        "We have 300 finished projects. Archiving them one by one takes forever; a bulk action would help.",
        "hold",
        "low",
        ["feature-request"],
        None,
        "web",
        None,
    ),
    (
        "saml",
        "marcus.webb",
        "SAML certificate rotation broke login for our subsidiary",
        "We rotated the signing certificate for northwind-eu and now nobody there can log in.",
        "new",
        "urgent",
        ["sso", "escalated"],
        None,
        None,
        None,
    ),
    (
        "duplicate-email",
        "jonas",
        "Scheduled report emails arrive twice",
        "Every Monday the weekly summary arrives twice, a minute apart.",
        "pending",
        "low",
        ["reports"],
        None,
        "reporting",
        None,
    ),
    (
        "tz",
        "pedro",
        "Audit log export shows the wrong time zone",
        "Times in the audit log CSV are two hours off; our account is set to Europe/Oslo.",
        "open",
        "normal",
        ["export", "escalated"],
        "sev3",
        "reporting",
        "tz",
    ),
    (
        "invite",
        "chloe",
        "Cannot invite users whose email contains a plus sign",
        "Inviting chloe+design@bluebird.example says 'invalid email'.",
        "new",
        "normal",
        ["users"],
        None,
        "web",
        None,
    ),
    (
        "slack",
        "a.karimi",
        "Slack notifications stopped after we renamed our workspace",
        "Since we renamed the Slack workspace no notifications arrive. Reconnecting did not help.",
        "open",
        "normal",
        ["integrations"],
        None,
        "integrations",
        None,
    ),
    (
        "search",
        "ingrid",
        "Search does not find documents uploaded in the last hour",
        "New uploads only show up in search after 30 to 60 minutes. Steps: upload a PDF, search its title. "
        "Expected: found within a minute.",
        "open",
        "high",
        ["search", "escalated"],
        "sev3",
        "search",
        None,
    ),
    (
        "retention",
        "marcus.webb",
        "Data retention setting is not saved",
        "Setting retention to 24 months and saving shows success, but the page shows 12 months again.",
        "solved",
        "normal",
        ["settings"],
        None,
        "web",
        None,
    ),
    (
        "api-429",
        "pedro",
        "Rate limit errors from the public API during our nightly sync",
        "Our nightly import gets HTTP 429 after about 600 requests.",
        "open",
        "high",
        ["api"],
        "sev3",
        "api",
        "ratelimit",
    ),
    (
        "darkmode",
        "kenji",
        "Dark mode text unreadable in PDF preview",
        "Grey on dark grey in the preview pane.",
        "closed",
        "low",
        ["ui"],
        None,
        "web",
        None,
    ),
    (
        "2fa",
        "jonas",
        "Two-factor codes rejected after changing phones",
        "I moved my authenticator to a new phone and now every code is rejected.",
        "open",
        "high",
        ["2fa"],
        None,
        "auth",
        None,
    ),
    (
        "gdpr",
        "hannah",
        "GDPR data export is missing attachments",
        "The export we requested for a former employee contains the records but none of the uploaded files.",
        "pending",
        "normal",
        ["compliance", "escalated"],
        None,
        None,
        None,
    ),
]

SEVERITIES = [
    ("Sev 1 - outage", "sev1"),
    ("Sev 2 - major", "sev2"),
    ("Sev 3 - minor", "sev3"),
    ("Sev 4 - cosmetic", "sev4"),
]
AREAS = ("auth", "reporting", "integrations", "billing", "mobile", "web", "api", "search")


def customer_email(local: str) -> str:
    """A seeded customer's address, from the local part in CUSTOMERS."""
    org = next(org for _, part, org in CUSTOMERS if part == local)
    domain = next(domain for name, _, domain in ORGANIZATIONS if name == org)
    return f"{local}@{domain}"


def agent_email(local: str) -> str:
    return f"{local}@support.sandbox.example"


def engineer_email(local: str) -> str:
    return f"{local}@product.sandbox.example"


@dataclass
class TrackerSeed:
    """One tracker's seeded records, by the short keys its seed data uses."""

    issues: dict[str, str] = field(default_factory=dict)  # short key -> issue id
    keys: dict[str, str] = field(default_factory=dict)  # short key -> the key people read (ENG-3, PLAT-1)
    places: dict[str, str] = field(default_factory=dict)  # team, repository or project -> what it is
    people: dict[str, str] = field(default_factory=dict)  # engineer name -> the tracker's user id or login
    where: str = ""  # the places, in words ("teams ENG, APP")


@dataclass
class SeedResult:
    """What the seed created, for the demo script and tests.

    The helpdesk's part (custom fields, organisations, people, tickets) is
    named after what it is; each tracker's part is in ``trackers[kind]``, and
    ``issues``/``identifiers`` are those of the tracker the seeded tickets
    already name (``linked``)."""

    # The helpdesk's custom fields (0: the helpdesk has none)
    linked_issue_field_id: Any = 0
    linked_issue_status_field_id: Any = 0
    severity_field_id: Any = 0
    product_area_field_id: Any = 0
    stage_field_id: Any = 0  # "Follow-up stage" ([stages] field in the example mappings)
    missing_field_id: Any = 0  # "Handoff: still missing" ([stages] missing_field)
    escalation_tag: str = ESCALATION_TAG
    organizations: dict[str, Any] = field(default_factory=dict)  # name -> id
    agents: dict[str, Any] = field(default_factory=dict)  # name -> id
    customers: dict[str, Any] = field(default_factory=dict)  # email -> id
    tickets: dict[str, Any] = field(default_factory=dict)  # short key -> ticket id
    trackers: dict[str, TrackerSeed] = field(default_factory=dict)  # kind -> its records
    linked: str = ""  # the tracker the seeded tickets name

    @property
    def issues(self) -> dict[str, str]:
        """Short key -> issue id in the tracker the seeded tickets name."""
        return self.trackers[self.linked].issues

    @property
    def identifiers(self) -> dict[str, str]:
        """Short key -> issue key (ENG-3) in the tracker the seeded tickets name."""
        return self.trackers[self.linked].keys

    def issue_ids(self, kind: str) -> dict[str, str]:
        """Short key -> issue id in tracker ``kind`` (empty when the sandbox has none)."""
        return self.trackers[kind].issues if kind in self.trackers else {}

    def keys(self, kind: str) -> dict[str, str]:
        """Short key -> issue key in tracker ``kind`` (empty when the sandbox has none)."""
        return self.trackers[kind].keys if kind in self.trackers else {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, names: dict[str, str]) -> list[str]:
        """What was seeded, for ``syncd sandbox``; ``names``: kind -> display name."""
        out = [f"Seeded {len(self.tickets)} tickets."]
        for kind, part in self.trackers.items():
            out.append(f"       {len(part.issues)} {names.get(kind, kind)} issues in {part.where}.")
        return out


class World:
    """The seeding in progress: the shared random draws, the moments, the result so far."""

    def __init__(self, rng: random.Random, start: datetime, result: SeedResult):
        self.rng = rng
        self.start = start
        self.result = result

    def linked_key(self, short: str) -> str:
        """The key of the issue ``short`` in the tracker the seeded tickets name."""
        return self.result.identifiers[short]


def seed_fakes(
    fakes: dict[str, Any],
    worlds: dict[str, ServiceWorld],
    *,
    registered_trackers: tuple[str, ...],
    now: datetime,
    rng_seed: int = 7,
) -> SeedResult:
    """Fill the fakes with the sample data; deterministic for a given ``rng_seed``.

    ``worlds``: kind -> that service's part (the helpdesk's first); ``now``:
    the sandbox clock's present."""
    rng = random.Random(rng_seed)
    start = now.replace(microsecond=0) - timedelta(days=21)
    moments = sorted(start + timedelta(minutes=rng.randint(0, 20 * 24 * 60)) for _ in range(80))
    tick: Iterator[datetime] = iter(moments)
    linked = [kind for kind, part in worlds.items() if part.linked_from_seed]
    result = SeedResult(linked=linked[0] if linked else "")
    world = World(rng, start, result)
    for part in worlds.values():
        if part.role == "tracker":
            result.trackers[part.kind] = TrackerSeed()
        part.setup(world)
    helpdesks = [part for part in worlds.values() if part.role == "helpdesk"]
    for part in [*(worlds[kind] for kind in linked), *helpdesks]:
        part.records(world, tick)
    # Drawn after everything above, so that the linked tracker's and the
    # helpdesk's data do not depend on which other trackers are present.
    others = [kind for kind in registered_trackers if not (kind in worlds and worlds[kind].linked_from_seed)]
    later = sorted(start + timedelta(minutes=rng.randint(0, 20 * 24 * 60)) for _ in range(LATER_MOMENTS * len(others)))
    for n, kind in enumerate(others):
        if kind in worlds:
            worlds[kind].records(world, iter(later[n * LATER_MOMENTS : (n + 1) * LATER_MOMENTS]))
    return result
