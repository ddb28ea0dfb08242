"""One service's part of the sandbox world: its seed, its people, the story's view of it.

Each fake names its part in its ``world`` class attribute, as an import path
``"package.module:Class"`` (``connectors/<kind>/seed.py``). A part

- seeds its fake (:meth:`ServiceWorld.setup`, :meth:`ServiceWorld.records`)
  with the world's people (:mod:`syncd.sandbox.seed`) in the service's own
  words;
- adds the connector settings that name what it seeded
  (:meth:`ServiceWorld.config_lines`);
- lets a script act as the people would, through the service's public API
  (a :class:`HelpdeskWorld` for agents and customers, a :class:`TrackerWorld`
  for engineers);
- shows ``syncd demo`` what the story needs to read back, as
  :class:`TicketView` and :class:`IssueView`.

The demo is told in roles: the helpdesk, the tracker the seeded tickets
already name (``story_role = "linked"``), a tracker whose issues anyone may
read (``"public"``) and a second tracker a ticket can need as well
(``"second"``). A helpdesk offers the story when it seeds the tickets the
story plays with (:data:`STORY_TICKETS`) and the world's people; a new
helpdesk joins the demo with its folder only.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import requests

if TYPE_CHECKING:
    from syncd.sandbox.seed import SeedResult, World
    from syncd.sandbox.server import FakeService

# The seeded tickets the demo plays with, by short key (a helpdesk offering the
# story seeds them, with the linked issues named in their descriptions).
STORY_TICKETS = ("search", "saml", "2fa", "gdpr", "csv")


@dataclass
class TicketView:
    """A ticket as an agent sees it."""

    id: Any
    subject: str
    status: str
    tags: list[str]
    notes: list[str]  # the bodies of the ticket's comments, oldest first


@dataclass
class IssueView:
    """An issue as an engineer sees it."""

    id: str  # as syncd stores it
    key: str
    title: str
    state: str  # as the tracker shows it
    url: str  # where a person opens it
    description: str = ""
    comments: list[str] = field(default_factory=list)  # bodies, oldest first
    links: list[str] = field(default_factory=list)  # the links back to tickets, one line each
    place: str = ""  # e.g. "repository owner/name (public)"


class ServiceWorld:
    """One service's part: seed, people, views. Built on the fake, with the sandbox's URL for it."""

    role: ClassVar[str] = ""  # "helpdesk" or "tracker"
    # The tracker whose issues the helpdesk's seeded tickets already name:
    # seeded before the helpdesk's tickets, and always in a sandbox.
    linked_from_seed: ClassVar[bool] = False

    def __init__(self, fake: FakeService, kind: str):
        self.fake = fake
        self.kind = kind
        self.result: SeedResult | None = None  # what the seed made, once seeded

    @property
    def url(self) -> str:
        return self.fake.base_url

    def setup(self, world: World) -> None:
        """At the start of the history: fields, people, teams, before any record."""

    def records(self, world: World, moments: Iterator[datetime]) -> None:
        """The service's records, each at the next of ``moments``."""

    def config_lines(self, result: SeedResult) -> list[str]:
        """Connector settings that name what the seed made (e.g. a custom field's id)."""
        return []


class HelpdeskWorld(ServiceWorld):
    """The helpdesk's part: the agents' and customers' acts and the tickets as agents see them."""

    role = "helpdesk"
    offers_story: ClassVar[bool] = False
    # Whether the helpdesk's automation closes a solved ticket for good (it then
    # takes no update, and syncd opens a follow-up ticket); False: a closed
    # ticket reopens on request.
    closes_for_good: ClassVar[bool] = True

    def agent_session(self, agent: str = "Priya Raman") -> requests.Session:
        raise NotImplementedError

    def agent_note(self, ticket_id: Any, body: str, *, agent: str = "Priya Raman", public: bool = False) -> dict:
        """An agent adds an internal note (or a public reply) to a ticket."""
        raise NotImplementedError

    def agent_set_tags(self, ticket_id: Any, tags: list[str], *, agent: str = "Priya Raman") -> dict:
        """An agent replaces a ticket's tags (adding an escalation tag, say)."""
        raise NotImplementedError

    def agent_set_status(self, ticket_id: Any, status: str, *, agent: str = "Priya Raman") -> dict:
        """An agent sets a ticket's status, given as a canonical status (connectors.base.TICKET_STATUSES:
        "pending", "solved"); the part says it in its helpdesk's own words."""
        raise NotImplementedError

    def agent_set_field(self, ticket_id: Any, field_id: Any, value: str, *, agent: str = "Priya Raman") -> None:
        raise NotImplementedError

    def customer_opens(self, subject: str, body: str, *, customer: str, agent: str, organization: str) -> Any:
        """A customer opens a ticket (``customer``: an email), assigned to ``agent``; its id."""
        raise NotImplementedError

    def automation_closes(self, ticket_id: Any) -> None:
        """The helpdesk's own automation closes a solved ticket (for good when ``closes_for_good``)."""
        raise NotImplementedError

    def field(self, ticket_id: Any, field_id: Any) -> str | None:
        raise NotImplementedError

    def view(self, ticket_id: Any) -> TicketView:
        raise NotImplementedError

    def follow_ups(self) -> list[TicketView]:
        """Tickets opened as follow-ups of closed ones."""
        raise NotImplementedError

    def ticket_word(self, ticket_id: Any) -> str:
        """How a person names a ticket ("#12")."""
        return f"#{ticket_id}"


class TrackerWorld(ServiceWorld):
    """A tracker's part: the engineers' acts and the issues as engineers see them."""

    role = "tracker"
    story_role: ClassVar[str] = ""  # "linked", "public" or "second" (see the module)

    def view(self, key: str) -> IssueView:
        """The issue ``key`` (a seed's short key or the tracker's own key)."""
        raise NotImplementedError

    def move(self, key: str, state: str, *, by: str = "Ada Novak") -> Any:
        """An engineer moves an issue to ``state``, in the tracker's own words."""
        raise NotImplementedError

    def take(self, key: str, *, by: str) -> None:
        """An engineer assigns the issue to themself and starts it."""
        raise NotImplementedError

    def comment(self, key: str, body: str, *, by: str = "Ada Novak") -> str:
        """Someone comments on the issue (a person, or a bot by its account name); returns the comment's id."""
        raise NotImplementedError

    def edit_comment(self, comment_id: str, body: str, *, by: str = "Ada Novak") -> None:
        """Someone edits a comment."""
        raise NotImplementedError

    def delete_comment(self, comment_id: str) -> None:
        """Someone deletes a comment."""
        raise NotImplementedError

    def key(self, short: str) -> str:
        """The issue key for a seed's short key (any other key as it is)."""
        if self.result is not None and short in self.result.keys(self.kind):
            return self.result.keys(self.kind)[short]
        return short


def world_class(fake: type[FakeService] | FakeService) -> type[ServiceWorld] | None:
    """The part a fake (class) names in ``world`` (None when it names none)."""
    if not fake.world:
        return None
    module, _, name = fake.world.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, ServiceWorld)):
        raise TypeError(
            f"{fake.__name__ if isinstance(fake, type) else type(fake).__name__}.world names "
            f"{fake.world!r}, which is not a ServiceWorld"
        )
    return cls


def load_world(fake: FakeService, kind: str) -> ServiceWorld | None:
    """The fake's part of the world, built on it (None when it names none)."""
    cls = world_class(fake)
    return cls(fake, kind) if cls is not None else None


@contextlib.contextmanager
def back_dated(fake: Any, when: datetime) -> Iterator[None]:
    """Run a fake's helpers as if it were ``when`` (its ``clock`` gives datetimes)."""
    clock = fake.clock
    fake.clock = lambda: when
    try:
        yield
    finally:
        fake.clock = clock
