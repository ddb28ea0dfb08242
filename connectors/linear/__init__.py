"""The Linear service: its connector (``connector``) and its fake (``fake``, for the sandbox and tests)."""

from connectors.linear.connector import LinearConfig, LinearConnector

__all__ = ["LinearConfig", "LinearConnector"]
