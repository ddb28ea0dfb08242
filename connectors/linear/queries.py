"""The GraphQL documents the Linear connector sends.

Every operation is named (the name is how requests are counted and how the
sandbox routes them) and selects only what syncd reads: Linear prices a
query by its complexity, and a connection multiplies its selection by
``first``. ``tests/connectors/linear/test_linear_contract.py`` validates each of
these against Linear's published schema.
"""

from __future__ import annotations

# What syncd reads of an issue, shared by the feed and the single-issue read.
ISSUE_FIELDS = """
fragment SyncdIssueFields on Issue {
  id
  identifier
  url
  title
  updatedAt
  state { name type }
  assignee { name displayName email }
  team { key }
  attachments(first: 25) { nodes { url title metadata } }
}
"""

# With the handoff on, the feed also reads whether each issue holds syncd's own
# comment of the kept slot (the demand comment): the comments by this API key's
# user whose body holds the slot marker, filtered server-side, the first one's
# id only (not its text). That is about 2 complexity points an issue, where a
# page of 50 issues costs about 2,000 without it (5 % more): a slot comment's
# write then needs no look first, since the feed said whether there is one.
# Off (withSlots false), the feed is the query it was.
SLOT_FIELDS = """
fragment SyncdSlotFields on Issue {
  slots: comments(filter: $slots, first: 1) @include(if: $withSlots) { nodes { id } }
}
"""

VIEWER = """
query SyncdViewer {
  viewer { id name email }
}
"""

# Most recently updated first (orderBy: updatedAt): the feed keeps its
# high-water mark until the last page (see LinearConnector.poll).
ISSUES = (
    """
query SyncdIssues($filter: IssueFilter!, $first: Int!, $after: String,
                  $slots: CommentFilter, $withSlots: Boolean = false) {
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes { ...SyncdIssueFields ...SyncdSlotFields }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + ISSUE_FIELDS
    + SLOT_FIELDS
)

# The conversation mirror's comment feed: comments made or edited since the window,
# oldest change first (an edit does not move its issue's updatedAt, so the issue feed
# alone would miss it). A comment whose user is null was written by an integration.
COMMENTS = """
query SyncdComments($filter: CommentFilter!, $first: Int!, $after: String) {
  comments(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes { id body url createdAt updatedAt issue { id identifier url } user { id name } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# The idle cycle of a feed that reads comments too: the issue feed's first page and
# the comment feed's first page as two root fields of ONE document (one request).
# Whichever has more pages is followed with SyncdIssues or SyncdComments alone.
FEED = (
    """
query SyncdFeed($filter: IssueFilter!, $first: Int!, $after: String,
                $cFilter: CommentFilter!, $cFirst: Int!, $cAfter: String,
                $slots: CommentFilter, $withSlots: Boolean = false) {
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes { ...SyncdIssueFields ...SyncdSlotFields }
    pageInfo { hasNextPage endCursor }
  }
  comments(filter: $cFilter, first: $cFirst, after: $cAfter, orderBy: updatedAt) {
    nodes { id body url createdAt updatedAt issue { id identifier url } user { id name } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + ISSUE_FIELDS
    + SLOT_FIELDS
)

ISSUE = (
    """
query SyncdIssue($id: String!) {
  issue(id: $id) { ...SyncdIssueFields trashed }
}
"""
    + ISSUE_FIELDS
)

# The existence check of linked issues: up to PRESENCE_BATCH ids a request.
# Archived issues (Linear archives closed ones after a while) still exist;
# a deleted one is in the trash (trashed) until Linear purges it, then absent.
PRESENCE = (
    """
query SyncdPresence($filter: IssueFilter!, $first: Int!) {
  issues(filter: $filter, first: $first, includeArchived: true) {
    nodes { ...SyncdIssueFields trashed }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + ISSUE_FIELDS
)

# The existence check of the comments syncd mirrored (the comment feed does not list
# deleted ones): up to COMMENT_PRESENCE_BATCH ids a request. A comment missing is
# deleted; one archived on its own (its issue not archived) was deleted too.
COMMENTS_PRESENT = """
query SyncdCommentsPresent($filter: CommentFilter!, $first: Int!) {
  comments(filter: $filter, first: $first, includeArchived: true) {
    nodes { id archivedAt issue { id archivedAt } }
  }
}
"""

COMMENT_CREATE = """
mutation SyncdCommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) {
    success
    comment { id updatedAt }
  }
}
"""

ATTACHMENT_CREATE = """
mutation SyncdAttachmentCreate($input: AttachmentCreateInput!) {
  attachmentCreate(input: $input) {
    success
    attachment { id updatedAt }
  }
}
"""

# One request: comments whose body holds the marker (filtered server-side,
# so the issue's comment count does not matter) and the attachments' metadata.
FIND_MARKER = """
query SyncdFindMarker($id: String!, $comments: CommentFilter!) {
  issue(id: $id) {
    id
    comments(filter: $comments, first: 1) { nodes { id body } }
    attachments(first: 50) { nodes { url metadata } }
  }
}
"""

# --- escalation: creating issues and comments kept in place --------------------------

# What an issue create needs once per process: the team's id and the ids of
# the draft's labels (team or workspace labels, names matched ignoring case).
# Each half is skipped with @include when its answer is already cached.
# Every team the API key can see (``syncd check``, and the bare keys recognised
# when the connector follows every team).
TEAMS = """
query SyncdTeams($first: Int!, $after: String) {
  teams(first: $first, after: $after) {
    nodes { id key name }
    pageInfo { hasNextPage endCursor }
  }
}
"""

CREATE_LOOKUP = """
query SyncdCreateLookup($teamKey: String!, $withTeam: Boolean!, $labels: IssueLabelFilter!,
                        $withLabels: Boolean!) {
  teams(filter: {key: {eq: $teamKey}}, first: 1) @include(if: $withTeam) { nodes { id key } }
  issueLabels(filter: $labels, first: 100) @include(if: $withLabels) { nodes { id name team { key } } }
}
"""

ISSUE_CREATE = """
mutation SyncdIssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { id identifier updatedAt }
  }
}
"""

# The issue by the id syncd chose for it: a read of the primary record,
# consistent as soon as the create returned (no search index in between).
FIND_CREATED = """
query SyncdFindCreated($id: String!) {
  issue(id: $id) { id updatedAt }
}
"""

# The scan for a slot comment: the issue's comments holding the slot marker
# (filtered server-side) and who syncd is, to keep only its own comments.
FIND_SLOT = """
query SyncdFindSlot($issue: String!, $comments: CommentFilter!) {
  viewer { id }
  issue(id: $issue) {
    id
    comments(filter: $comments, first: 10) { nodes { id body updatedAt createdAt user { id } } }
  }
}
"""

COMMENT_UPDATE = """
mutation SyncdCommentUpdate($id: String!, $input: CommentUpdateInput!) {
  commentUpdate(id: $id, input: $input) {
    success
    comment { id updatedAt }
  }
}
"""

# -- several writes in one document ----------------------------------------------------

_WRITE_FIELDS = {
    "attachment": ("AttachmentCreateInput", "attachmentCreate", "attachment"),
    "comment": ("CommentCreateInput", "commentCreate", "comment"),
    "update": ("CommentUpdateInput", "commentUpdate", "comment"),
}


def batch_writes(kinds: list[str], echo: frozenset[int] = frozenset()) -> str:
    """``mutation SyncdWrites``: one aliased ``attachmentCreate``, ``commentCreate`` or
    ``commentUpdate`` per kind ("attachment", "comment", "update"), aliases w0, w1, ...
    and inputs $i0, $i1, ...; an update also takes the comment's id as $c0, $c1, ...

    The writes at the positions in ``echo`` (the last write to each issue in the document)
    also read their issue as it is after them (``SyncdIssueFields``, about 40 complexity
    points an issue, what the feed spends to read it again): the echo of syncd's writes,
    which the next poll then need not read again (LinearConnector.poll)."""
    params = []
    fields = []
    for n, k in enumerate(kinds):
        input_type, mutation, field = _WRITE_FIELDS[k]
        params.append(f"$i{n}: {input_type}!")
        args = f"input: $i{n}"
        if k == "update":
            params.append(f"$c{n}: String!")
            args = f"id: $c{n}, {args}"
        issue = " issue { ...SyncdIssueFields }" if n in echo else ""
        fields.append(f"  w{n}: {mutation}({args}) {{ success {field} {{ id updatedAt{issue} }} }}")
    document = f"mutation SyncdWrites({', '.join(params)}) {{\n" + "\n".join(fields) + "\n}\n"
    return document + ISSUE_FIELDS if echo else document


def aliased_issues(operation: str, alias: str, selection: str, count: int) -> str:
    """``query <operation>``: one ``issue(id: $idN)`` per position, aliased ``<alias>N``,
    each with ``selection``, whose ``$c`` is that position's ``$cN: CommentFilter!``."""
    params = ", ".join(f"$id{n}: String!, $c{n}: CommentFilter!" for n in range(count))
    fields = "\n".join(
        f"  {alias}{n}: issue(id: $id{n}) {{ {selection.replace('$c', f'$c{n}')} }}" for n in range(count)
    )
    return f"query {operation}({params}) {{\n{fields}\n}}\n"


def find_markers(count: int) -> str:
    """``query SyncdFindMarkers``: FIND_MARKER's selection for ``count`` issues at
    once, aliases m0, m1, ... with $id0, $c0, ..."""
    return aliased_issues(
        "SyncdFindMarkers",
        "m",
        "id comments(filter: $c, first: 1) { nodes { id body } } attachments(first: 50) { nodes { url metadata } }",
        count,
    )


def find_slots(count: int) -> str:
    """``query SyncdFindSlots``: the look for a slot comment (FIND_SLOT) of ``count``
    issues at once, aliases s0, s1, ... with $id0, $c0, ...: syncd's own comments
    holding the slot marker (``user: {isMe: {eq: true}}`` in the filter), oldest first
    as the caller sorts them. For the slot writes of a batch whose comment neither
    the store nor the feed could vouch for. About 14 complexity points an issue
    (700 for a batch of fifty), well under Linear's 10,000 a query."""
    return aliased_issues("SyncdFindSlots", "s", "id comments(filter: $c, first: 10) { nodes { id createdAt } }", count)
