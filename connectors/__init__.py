"""Connector plugins: one module per service (see connectors.base)."""
