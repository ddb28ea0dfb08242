"""Realistic, deterministic sample data for the sandbox fakes.

A small B2B SaaS support desk (four customer organisations on different
plans, eight customers, three agents and the syncd API admin) and a product
team in Linear (ENG and APP with the usual workflow states, four engineers).
About twenty tickets in varied states, some already flagged for product and
a few already naming a Linear issue in the "Linked issue" field, so the demo
has handoffs in every stage to show. Records are back-dated over the last
three weeks through each fake's clock, so the export and the issue feed see
a believable history. The same ``rng_seed`` always gives the same data.

When the GitHub and Jira fakes are given, they get their own product work:
the public SDK repository ``sandbox/mobile-sdk`` (anyone can read it: syncd
must write nothing there that names a customer), the private
``sandbox/billing``, and the Jira projects PLAT and INFRA (keys chosen not to
collide with Linear's ENG and APP, so a pasted key names one tracker only).
No ticket names a GitHub or Jira issue yet: the demo and the tests make those
links the way agents do.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterator

from connectors.github.fake import GITHUB_REPOSITORIES, SANDBOX_GITHUB_TOKEN, GitHubFake
from connectors.jira.fake import JIRA_PROJECTS, JiraFake
from connectors.linear.fake import SANDBOX_API_KEY, SANDBOX_TEAMS, LinearFake
from connectors.zendesk.fake import SANDBOX_EMAIL, SANDBOX_TOKEN, ZendeskFake


@dataclass
class SeedResult:
    """What :func:`seed` created, for the demo script and tests."""

    zendesk_email: str
    zendesk_token: str
    linear_api_key: str
    linked_issue_field_id: int
    linked_issue_status_field_id: int
    severity_field_id: int
    product_area_field_id: int
    escalation_tag: str
    stage_field_id: int = 0  # "Follow-up stage" ([stages] field in the example mappings)
    missing_field_id: int = 0  # "Handoff: still missing" ([stages] missing_field)
    organizations: dict[str, int] = field(default_factory=dict)  # name -> id
    agents: dict[str, int] = field(default_factory=dict)  # name -> id
    customers: dict[str, int] = field(default_factory=dict)  # email -> id
    tickets: dict[str, int] = field(default_factory=dict)  # short key -> ticket id
    teams: dict[str, str] = field(default_factory=dict)  # key -> team id
    engineers: dict[str, str] = field(default_factory=dict)  # name -> user id
    issues: dict[str, str] = field(default_factory=dict)  # short key -> issue id (UUID)
    identifiers: dict[str, str] = field(default_factory=dict)  # short key -> identifier (ENG-3)
    # GitHub (empty when the sandbox has no GitHub fake)
    github_token: str | None = None
    repositories: dict[str, str] = field(default_factory=dict)  # owner/name -> "public" | "private"
    github_issues: dict[str, str] = field(default_factory=dict)  # short key -> issue id (stable)
    github_keys: dict[str, str] = field(default_factory=dict)  # short key -> owner/repo#n
    # Jira (empty when the sandbox has no Jira fake)
    jira_email: str | None = None
    jira_token: str | None = None
    jira_projects: dict[str, str] = field(default_factory=dict)  # key -> name
    jira_issues: dict[str, str] = field(default_factory=dict)  # short key -> issue id (numeric string)
    jira_keys: dict[str, str] = field(default_factory=dict)  # short key -> PLAT-3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> list[str]:
        """What was seeded, for ``syncd sandbox``."""
        out = [f"Seeded {len(self.tickets)} tickets, {len(self.issues)} Linear issues (teams {', '.join(self.teams)})."]
        if self.github_issues:
            repos = ", ".join(f"{r} ({v})" for r, v in self.repositories.items())
            out.append(f"       {len(self.github_issues)} GitHub issues in {repos}.")
        if self.jira_issues:
            out.append(f"       {len(self.jira_issues)} Jira issues in projects {', '.join(self.jira_projects)}.")
        return out


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

ISSUES = [
    # key, team, title, state, assignee, priority, description
    (
        "sso",
        "ENG",
        "SSO redirect loop when the IdP session has expired",
        "In Progress",
        "Ada Novak",
        1,
        "Users bounce between /login and the IdP when their Okta session expired but our session cookie "
        "survived. The callback sees a stale state parameter and restarts the flow.",
    ),
    (
        "csv",
        "ENG",
        "Report CSV export exceeds the 30 s gateway timeout",
        "Todo",
        "Ravi Patel",
        2,
        "Exports over ~50k rows are built synchronously in the request. Move them to a background job and "
        "email a download link.",
    ),
    (
        "webhook",
        "ENG",
        "Webhook retry policy ignores 410 Gone",
        "Backlog",
        None,
        3,
        "A 410 from the receiver should disable the endpoint, not retry with backoff for 72 hours.",
    ),
    (
        "patch500",
        "ENG",
        "PATCH /shipments returns 500 when notes is an empty string",
        "In Review",
        "Lena Fischer",
        2,
        "Validation casts '' to None after the NOT NULL check. Fix and add a regression test.",
    ),
    (
        "search",
        "ENG",
        "Search index lags uploads by up to an hour",
        "Triage",
        None,
        2,
        "The indexing queue is drained by a single worker; bursts of uploads back it up.",
    ),
    (
        "tz",
        "ENG",
        "Audit log export ignores the account time zone",
        "Done",
        "Ravi Patel",
        3,
        "Timestamps are rendered in UTC regardless of the account setting.",
    ),
    (
        "ratelimit",
        "ENG",
        "Public API rate limiter too strict for nightly batch clients",
        "Canceled",
        None,
        4,
        "Superseded by the per-key burst allowance shipped in 4.12.",
    ),
    (
        "android",
        "APP",
        "Android 14 crash when uploading photos (scoped storage)",
        "In Progress",
        "Sam Okafor",
        1,
        "READ_MEDIA_IMAGES is not requested on API 34; the picker returns a URI we cannot open.",
    ),
    (
        "safari",
        "APP",
        "Safari 17 renders blank dashboard charts",
        "Todo",
        None,
        3,
        "The chart library uses an OffscreenCanvas path that Safari 17.0 does not support.",
    ),
    (
        "archive",
        "APP",
        "Bulk archive for projects",
        "Backlog",
        "Lena Fischer",
        4,
        "Requested by several customers: select many projects and archive them at once.",
    ),
]

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


GITHUB_ISSUES = [
    # key, repository, title, body, assignee login, labels, closed as (None: open)
    (
        "offline",
        "sandbox/mobile-sdk",
        "Crash on cold start when the offline cache is corrupt",
        "SQLiteDatabaseCorruptException from CacheStore.open(); we should drop and rebuild the cache.",
        "sam-okafor",
        ("bug",),
        None,
    ),
    (
        "push",
        "sandbox/mobile-sdk",
        "Push notifications delivered twice on iOS 17",
        "The token refresh registers a second APNs handler.",
        None,
        ("bug", "ios"),
        None,
    ),
    (
        "totp",
        "sandbox/mobile-sdk",
        "TOTP codes rejected after restoring the authenticator on a new device",
        "The restored seed is read with the wrong time step; codes are off by one window.",
        "ada-novak",
        ("bug", "auth"),
        None,
    ),
    (
        "configure",
        "sandbox/mobile-sdk",
        "Deprecate setApiKey() in favour of configure()",
        "Shipped in 5.2.",
        "ravi-patel",
        ("api",),
        "completed",
    ),
    (
        "vat",
        "sandbox/billing",
        "Norwegian invoices use the 20% VAT rate instead of 25%",
        "The rate table keys Norway under the EU default.",
        "lena-fischer",
        ("bug",),
        None,
    ),
    (
        "proration",
        "sandbox/billing",
        "Proration is wrong after a mid-cycle downgrade",
        "Credits are computed from the new plan's price.",
        None,
        ("bug",),
        None,
    ),
    (
        "dunning",
        "sandbox/billing",
        "Retry failed card payments on day 3",
        "Superseded by the payment provider's smart retries.",
        None,
        ("feature",),
        "not_planned",
    ),
]

JIRA_ISSUES = [
    # key, project, summary, status, assignee, resolution (for done), description
    (
        "gdpr",
        "PLAT",
        "GDPR export omits uploaded attachments",
        "In Progress",
        "Lena Fischer",
        None,
        "The export job reads records from the database but never walks the object store.",
    ),
    (
        "saml",
        "PLAT",
        "SAML signing certificate rotation needs a restart to take effect",
        "To Do",
        "Ada Novak",
        None,
        "The IdP metadata is cached for the life of the process.",
    ),
    (
        "digest",
        "PLAT",
        "Weekly report e-mail sent twice after the DST change",
        "In Review",
        "Ravi Patel",
        None,
        "The scheduler fires at 01:30 local time, which happened twice.",
    ),
    (
        "pg16",
        "PLAT",
        "Upgrade the primary database to PostgreSQL 16",
        "Done",
        "Sam Okafor",
        "Done",
        "Done in the October maintenance window.",
    ),
    (
        "tenantkeys",
        "PLAT",
        "Per-tenant encryption keys for the EU region",
        "Done",
        None,
        "Won't Do",
        "Replaced by the regional KMS rollout.",
    ),
    (
        "backups",
        "INFRA",
        "Nightly backup verification job times out",
        "In Progress",
        "Sam Okafor",
        None,
        "Verification restores the whole database; sample instead.",
    ),
]


@contextlib.contextmanager
def _at(fake: Any, when: datetime) -> Iterator[None]:
    """Run a fake's helpers as if it were ``when`` (back-dating seeded history)."""
    clock = fake.clock
    fake.clock = lambda: when
    try:
        yield
    finally:
        fake.clock = clock


# The fakes the seed data needs in every sandbox (the seeded tickets name Linear issues).
NEEDS = ("zendesk", "linear")


def seed_fakes(fakes: dict[str, Any], *, rng_seed: int = 7) -> SeedResult:
    """:func:`seed` on a sandbox's fakes, by kind."""
    return seed(
        fakes["zendesk"], fakes["linear"], rng_seed=rng_seed, github=fakes.get("github"), jira=fakes.get("jira")
    )


def seed(
    zendesk: ZendeskFake,
    linear: LinearFake,
    *,
    rng_seed: int = 7,
    github: GitHubFake | None = None,
    jira: JiraFake | None = None,
) -> SeedResult:
    """Fill the fakes with the sample data; deterministic for a given ``rng_seed``."""
    rng = random.Random(rng_seed)
    now = zendesk.clock().replace(microsecond=0)
    start = now - timedelta(days=21)
    moments = sorted(start + timedelta(minutes=rng.randint(0, 20 * 24 * 60)) for _ in range(80))
    tick = iter(moments)

    with _at(zendesk, start), _at(linear, start):
        linked = zendesk.add_ticket_field(
            "Linked issue", "text", description="The tracker issue this ticket waits on (set by syncd)."
        )
        linked_status = zendesk.add_ticket_field(
            "Linked issue status", "text", description="Status of the linked issue (set by syncd)."
        )
        severity = zendesk.add_ticket_field(
            "Severity",
            "tagger",
            options=[
                ("Sev 1 - outage", "sev1"),
                ("Sev 2 - major", "sev2"),
                ("Sev 3 - minor", "sev3"),
                ("Sev 4 - cosmetic", "sev4"),
            ],
        )
        area = zendesk.add_ticket_field(
            "Product area",
            "tagger",
            options=[
                (name.title(), name)
                for name in ("auth", "reporting", "integrations", "billing", "mobile", "web", "api", "search")
            ],
        )
        stage = zendesk.add_ticket_field(
            "Follow-up stage", "text", description="Where the follow-up stands in the handoff (set by syncd)."
        )
        missing = zendesk.add_ticket_field(
            "Handoff: still missing",
            "textarea",
            description="What a flagged ticket needs before it goes to product (set by syncd).",
        )
        result = SeedResult(
            zendesk_email=SANDBOX_EMAIL,
            zendesk_token=SANDBOX_TOKEN,
            linear_api_key=SANDBOX_API_KEY,
            linked_issue_field_id=linked["id"],
            linked_issue_status_field_id=linked_status["id"],
            severity_field_id=severity["id"],
            product_area_field_id=area["id"],
            escalation_tag="escalated",
            stage_field_id=stage["id"],
            missing_field_id=missing["id"],
        )
        org_ids = {}
        for name, plan, domain in ORGANIZATIONS:
            org = zendesk.add_organization(name, plan=plan, domain_names=[domain], tags=[plan])
            org_ids[name] = org["id"]
            result.organizations[name] = org["id"]
        domains = {name: domain for name, _, domain in ORGANIZATIONS}
        for name, local in AGENTS:
            result.agents[name] = zendesk.add_user(name, f"{local}@support.sandbox.example", role="agent")["id"]
        for name, local, org_name in CUSTOMERS:
            email = f"{local}@{domains[org_name]}"
            result.customers[email] = zendesk.add_user(name, email, organization_id=org_ids[org_name])["id"]
        tier1 = zendesk.add_group("Support")
        zendesk.add_group("Escalations")

        for key, name in zip(SANDBOX_TEAMS, ("Engineering", "Apps")):
            result.teams[key] = linear.add_team(key, name)["id"]
        for name, local in ENGINEERS:
            result.engineers[name] = linear.add_user(name, f"{local}@product.sandbox.example")["id"]
        for label in ("Bug", "Feature", "Customer"):
            linear.add_label(label)

    for key, team, title, state, assignee, priority, description in ISSUES:
        with _at(linear, next(tick)):
            creator = list(result.engineers.values())[rng.randrange(len(result.engineers))]
            issue = linear.create_issue(
                team,
                title,
                description=description,
                priority=priority,
                creator=creator,
                labels=["Feature"] if key == "archive" else ["Bug"],
            )
        with _at(linear, next(tick)):
            if assignee:
                linear.assign(issue, result.engineers[assignee])
            if state != "Backlog":
                linear.move_to_state(issue, state)
        result.issues[key] = issue["id"]
        result.identifiers[key] = linear.issue(issue["id"])["identifier"]

    agents = list(result.agents.values())
    for key, local, subject, description, status, ticket_priority, tags, sev, product, issue_key in TICKETS:
        requester = next(uid for email, uid in result.customers.items() if email.split("@")[0] == local)
        fields: dict[int, Any] = {}
        if sev:
            fields[severity["id"]] = sev
        if product:
            fields[area["id"]] = product
        with _at(zendesk, next(tick)):
            ticket = zendesk.create_ticket(
                subject,
                description,
                requester_id=requester,
                priority=ticket_priority,
                custom_fields=fields,
                tags=[t for t in tags if t != "escalated"],
            )
        result.tickets[key] = ticket["id"]
        if status == "new":
            continue
        agent = agents[rng.randrange(len(agents))]
        with _at(zendesk, next(tick)):
            zendesk.update_ticket(ticket["id"], author_id=agent, assignee_id=agent, group_id=tier1["id"], status="open")
            zendesk.add_comment(
                ticket["id"], "Thanks for the report, we are looking into it.", public=True, author_id=agent
            )
        changes: dict[str, Any] = {}
        if "escalated" in tags:
            changes["additional_tags"] = ["escalated"]
        if issue_key:
            changes["custom_fields"] = {linked["id"]: result.identifiers[issue_key]}
        if status != "open":
            changes["status"] = status
        if changes:
            with _at(zendesk, next(tick)):
                note = "Escalated to product." if "escalated" in tags else "Updated."
                zendesk.add_comment(ticket["id"], note, public=False, author_id=agent)
                zendesk.update_ticket(ticket["id"], author_id=agent, **changes)
    # Drawn after everything above, so Zendesk and Linear data do not depend
    # on which other fakes are present.
    later = sorted(start + timedelta(minutes=rng.randint(0, 20 * 24 * 60)) for _ in range(40))
    if github is not None:
        seed_github(github, result, start, later[:20])
    if jira is not None:
        seed_jira(jira, result, start, later[20:])
    return result


@contextlib.contextmanager
def _github_at(fake: GitHubFake, when: datetime) -> Iterator[None]:
    """The GitHub fake's clock is epoch seconds and never goes back: call in time order."""
    clock = fake._clock
    fake._clock = lambda: when.timestamp()
    try:
        yield
    finally:
        fake._clock = clock


def seed_github(github: GitHubFake, result: SeedResult, start: datetime, moments: list[datetime]) -> None:
    """Two repositories (one public, one private) with a few issues each."""
    tick = iter(moments)
    result.github_token = SANDBOX_GITHUB_TOKEN
    with _github_at(github, start):
        for name, private in GITHUB_REPOSITORIES:
            github.create_repo(name, private=private)
            result.repositories[name] = "private" if private else "public"
    for key, repo, title, body, assignee, labels, closed in GITHUB_ISSUES:
        with _github_at(github, next(tick)):
            issue = github.create_issue(repo, title, body, user="ravi-patel", assignee=assignee, labels=labels)
        if closed:
            with _github_at(github, next(tick)):
                github.close(issue, closed)
        result.github_issues[key] = str(issue.id)
        result.github_keys[key] = f"{issue.repo.full_name}#{issue.number}"


def seed_jira(jira: JiraFake, result: SeedResult, start: datetime, moments: list[datetime]) -> None:
    """Projects PLAT and INFRA with issues in every status category (one cancelled)."""
    tick = iter(moments)
    result.jira_email = jira.email
    result.jira_token = jira.api_token
    for key, name in JIRA_PROJECTS:
        if key not in jira.projects:
            jira.add_project(key, name)
        result.jira_projects[key] = name
    for name, _ in ENGINEERS:
        if name not in jira.users:
            jira.add_user(name, f"{name.split()[0].lower()}@product.sandbox.example")
    for key, project, summary, status, assignee, resolution, description in JIRA_ISSUES:
        issue = jira.create_issue(project, summary, description=description, assignee=assignee, at=next(tick))
        if status != "To Do":
            jira.transition(issue, status, resolution=resolution, at=next(tick))
        result.jira_issues[key] = issue.id
        result.jira_keys[key] = issue.key
