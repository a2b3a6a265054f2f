"""Emitters: every built-in channel's real wire format, a client that sends it through a proxy,
a local fake internet to receive it, and a mitmproxy addon that points the proxy at it."""

from inspector.emit.channels import WireRequest, channels, observation_of, wire_requests

__all__ = ["WireRequest", "channels", "observation_of", "wire_requests"]
