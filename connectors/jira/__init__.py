"""The Jira service: its connector (``connector``) and its fake (``fake``, for the sandbox and tests)."""

from connectors.jira.connector import JiraConfig, JiraConnector

__all__ = ["JiraConfig", "JiraConnector"]
