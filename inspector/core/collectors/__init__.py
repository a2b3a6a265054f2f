"""Collector profiles (Segment, PostHog, Sentry, OTLP, …): one module each, on a registry."""

from inspector.core.collectors.base import Collector, Endpoint, Item, item_from_dict
from inspector.core.collectors.registry import by_shape, collectors, for_request, get, hosts, register, serving

__all__ = [
           "Collector",
           "Endpoint",
           "Item",
           "by_shape",
           "collectors",
           "for_request",
           "get",
           "hosts",
           "item_from_dict",
           "register",
           "serving",
]
