"""The Zendesk service: its connector (``connector``) and its fake (``fake``, for the sandbox and tests)."""

from connectors.zendesk.connector import ZendeskConfig, ZendeskConnector

__all__ = ["ZendeskConfig", "ZendeskConnector"]
