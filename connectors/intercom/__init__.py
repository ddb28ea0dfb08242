"""The Intercom service: its connector (``connector``) and its fake (``fake``, for the sandbox and tests)."""

from connectors.intercom.connector import IntercomConfig, IntercomConnector

__all__ = ["IntercomConfig", "IntercomConnector"]
