"""syncd: keeps helpdesk tickets and tracker issues on the same thread."""

__version__ = "0.1.0"
