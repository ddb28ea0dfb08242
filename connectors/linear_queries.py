"""The GraphQL documents the Linear connector sends.

Every operation is named (the name is how requests are counted and how the
sandbox routes them) and selects only what syncd reads: Linear prices a
query by its complexity, and a connection multiplies its selection by
``first``. ``tests/contract/test_linear_contract.py`` validates each of
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

VIEWER = """
query SyncdViewer {
  viewer { id name email }
}
"""

# Most recently updated first (orderBy: updatedAt): the feed keeps its
# high-water mark until the last page (see LinearConnector.poll).
ISSUES = """
query SyncdIssues($filter: IssueFilter!, $first: Int!, $after: String) {
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes { ...SyncdIssueFields }
    pageInfo { hasNextPage endCursor }
  }
}
""" + ISSUE_FIELDS

ISSUE = """
query SyncdIssue($id: String!) {
  issue(id: $id) { ...SyncdIssueFields }
}
""" + ISSUE_FIELDS

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
