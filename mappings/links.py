"""Link detection: which issues a ticket names, and which tickets an issue shows.

Pure: the patterns come from the connectors (each knows its URL and key
formats), the text from the records. syncd's own writes carry a marker and
are never read as a person's intent, so a note syncd wrote that mentions an
issue cannot link (or re-link) anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from syncd.records import Comment, Issue, Ticket


@dataclass(frozen=True)
class Candidate:
    """A reference to an issue found on a ticket, not yet resolved to an id."""

    tracker: str
    ref: str  # as found: a key (ENG-123) or what the tracker's pattern captured
    origin: str  # comment, tag, field


def compile_patterns(patterns: Mapping[str, Iterable[str]]) -> dict[str, list[re.Pattern[str]]]:
    return {tracker: [re.compile(p) for p in ps] for tracker, ps in patterns.items()}


def refs_in_text(text: str, patterns: Mapping[str, list[re.Pattern[str]]]) -> list[tuple[str, str]]:
    """(tracker, ref) pairs in the order they appear, without repeats."""
    found: list[tuple[int, str, str]] = []
    for tracker, regexes in patterns.items():
        for regex in regexes:
            for m in regex.finditer(text or ""):
                found.append((m.start(), tracker, m.group("ref")))
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for _, tracker, ref in sorted(found):
        if (tracker, ref) not in seen:
            seen.add((tracker, ref))
            out.append((tracker, ref))
    return out


def ticket_candidates(
    ticket: Ticket,
    previous: Ticket | None,
    new_comments: Iterable[Comment],
    patterns: Mapping[str, list[re.Pattern[str]]],
    link_fields: Iterable[str] = (),
) -> list[Candidate]:
    """Issues a ticket names in what changed: new comments, new tags, link fields."""
    out: list[Candidate] = []
    seen: set[tuple[str, str]] = set()

    def add(pairs: list[tuple[str, str]], origin: str) -> None:
        for tracker, ref in pairs:
            if (tracker, ref) not in seen:
                seen.add((tracker, ref))
                out.append(Candidate(tracker, ref, origin))

    for comment in new_comments:
        if comment.markers:  # syncd wrote it
            continue
        add(refs_in_text(comment.body, patterns), "comment")
    old_tags = set(previous.tags) if previous else set()
    for tag in ticket.tags:
        if tag not in old_tags:
            # Helpdesk tags are lower case: ENG-123 is tagged eng-123.
            add(refs_in_text(tag.upper(), patterns), "tag")
    for field_id in link_fields:
        value = ticket.fields.get(field_id)
        old = previous.fields.get(field_id) if previous else None
        if value and value != old:
            add(refs_in_text(str(value), patterns), "field")
    return out


def unmatched_link_fields(
    ticket: Ticket,
    previous: Ticket | None,
    patterns: Mapping[str, list[re.Pattern[str]]],
    link_fields: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(field id, value) of each link field whose new value names no issue any
    tracker recognises: what an agent meant as a link and syncd cannot follow."""
    out = []
    for field_id in link_fields:
        value = ticket.fields.get(field_id)
        old = previous.fields.get(field_id) if previous else None
        if value and value != old and not refs_in_text(str(value), patterns):
            out.append((field_id, str(value)))
    return out


def shared_key_trackers(prefixes: Mapping[str, frozenset[str] | None]) -> frozenset[str]:
    """The trackers whose keys another tracker could have too (ENG-89 in a Jira project
    and in a Linear team), from each tracker's key prefixes (None: any prefix; empty:
    no key of the PREFIX-123 form). Notes name the tracker of these issues."""
    out: set[str] = set()
    names = sorted(prefixes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pa, pb = prefixes[a], prefixes[b]
            if pa == frozenset() or pb == frozenset():
                continue
            if pa is None or pb is None or pa & pb:
                out |= {a, b}
    return frozenset(out)


def issue_ticket_ids(issue: Issue, previous: Issue | None, ticket_pattern: re.Pattern[str]) -> list[str]:
    """Ticket ids shown on an issue by attachments a person added (not syncd)."""
    old = {a.url for a in previous.attachments} if previous else set()
    out: list[str] = []
    for attachment in issue.attachments:
        if attachment.marker or attachment.url in old:
            continue
        m = ticket_pattern.search(attachment.url)
        if m and m.group("id") not in out:
            out.append(m.group("id"))
    return out


def syncd_attached_ticket_ids(issue: Issue, ticket_pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(ticket id, marker) of the tickets syncd itself showed on an issue (its own attachments).

    Not a person's intent, so never a new link; but after a lost store they
    are what is left of a link made by hand (``syncd link``)."""
    out: list[tuple[str, str]] = []
    for attachment in issue.attachments:
        m = ticket_pattern.search(attachment.url) if attachment.marker else None
        if m and attachment.marker and (m.group("id"), attachment.marker) not in out:
            out.append((m.group("id"), attachment.marker))
    return out


def noted_refs(comments: Iterable[Comment], patterns: Mapping[str, list[re.Pattern[str]]]) -> list[tuple[str, str]]:
    """(tracker, ref) named in the notes syncd wrote (comments with a marker): a link's own note among them."""
    out: list[tuple[str, str]] = []
    for comment in comments:
        if comment.markers:
            out += [pair for pair in refs_in_text(comment.body, patterns) if pair not in out]
    return out
