"""telemetry-inspector: intercept, decode and audit telemetry against vendors' published claims."""

__version__ = "0.1.0"
