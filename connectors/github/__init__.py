"""The GitHub service: its connector (``connector``) and its fake (``fake``, for the sandbox and tests)."""

from connectors.github.connector import GitHubConfig, GitHubConnector

__all__ = ["GitHubConfig", "GitHubConnector"]
