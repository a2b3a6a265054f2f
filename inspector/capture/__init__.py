"""Capture adapters: turn HAR files, mitmproxy flow files, live flows and raw payload files
into Observations for the core pipeline."""

from inspector.capture.load import CaptureError, load_capture, sniff_kind

__all__ = ["CaptureError", "load_capture", "sniff_kind"]
