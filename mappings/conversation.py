"""A route's conversation rule: whether and which comments cross between tickets and issues.

Built by :mod:`mappings.files` from a route's ``[routes.<name>.conversation]``
table; used by :mod:`mappings.conversation_plan`. Off unless the admin says.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("none", "to_ticket", "to_issue", "both")
DEFAULT_MAX_LENGTH = 2000


@dataclass(frozen=True)
class ConversationRule:
    """A route's ``conversation`` table. Off (``direction = "none"``) unless the admin says."""

    direction: str = "none"  # one of DIRECTIONS
    prefix: str | None = None  # an agent's note that begins with it crosses to the issues (it is removed)
    tag: str | None = None  # or: any internal note on a ticket that carries this tag (a macro's)
    agents: tuple[str, ...] = ()  # helpdesk authors (id or name) whose notes may cross; empty: every agent
    engineers: tuple[str, ...] = ()  # tracker authors (id or name) whose comments may cross; empty: every person
    ignore: tuple[str, ...] = ()  # tracker accounts (bots) whose comments never cross: id or name
    max_length: int = DEFAULT_MAX_LENGTH  # longer: the first paragraph and the link

    @property
    def to_ticket(self) -> bool:
        return self.direction in ("to_ticket", "both")

    @property
    def to_issue(self) -> bool:
        return self.direction in ("to_issue", "both")


OFF = ConversationRule()
