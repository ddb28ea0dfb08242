"""Fake services for the demo, end-to-end tests and benchmarks."""
