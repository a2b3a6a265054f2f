"""The core pipeline: observation → decoded → findings → event.

Nothing in this package imports mitmproxy or textual: the live addon, the offline
auditor and the tests all run this same code (tests/test_core_isolation.py proves it).
"""
