"""`python -m inspector.emit`: send the channel samples through a proxy, one line per request.

    python -m inspector.emit --proxy 127.0.0.1:8080 --ca ~/.mitmproxy/mitmproxy-ca-cert.pem
    python -m inspector.emit --list

Without --proxy/--ca it uses HTTPS_PROXY and SSL_CERT_FILE (or REQUESTS_CA_BUNDLE, …), as set
by `telemetry-inspector exec`. By default one sample per channel (the first, clean one) is
sent; --all sends the planted violations too. It never sends without a proxy (or --connect-to).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from inspector.emit.channels import WireRequest, wire_requests
from inspector.emit.redirect import parse_address
from inspector.emit.send import SendError, send

CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _proxy_from_env() -> tuple[str, int] | None:
    for name in PROXY_VARIABLES:
        value = os.environ.get(name)
        if value:
            parts = urlsplit(value if "://" in value else f"http://{value}")
            if parts.hostname and parts.port:
                return parts.hostname, parts.port
    return None


def _ca_from_env() -> Path | None:
    for name in CA_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    return None


def select(requests: list[WireRequest], channels: list[str], samples: list[str], every: bool) -> list[WireRequest]:
    """The requests to send: by channel and sample name; the first per channel unless `every`."""
    chosen = [r for r in requests if (not channels or r.channel in channels) and (not samples or r.name in samples)]
    if every or samples:
        return chosen
    first: dict[str, WireRequest] = {}
    for request in chosen:
        first.setdefault(request.channel, request)
    return list(first.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inspector.emit", description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", help="HOST:PORT of the HTTP proxy (default: $HTTPS_PROXY)")
    parser.add_argument("--ca", type=Path, help="CA certificate to verify TLS with (default: $SSL_CERT_FILE, …)")
    parser.add_argument("--connect-to", help="no proxy: connect to HOST:PORT directly (a local upstream)")
    parser.add_argument("--channel", action="append", default=[], help="only this channel (repeatable)")
    parser.add_argument("--sample", action="append", default=[], help="only this sample name (repeatable)")
    parser.add_argument("--all", action="store_true", help="every sample, planted violations included")
    parser.add_argument("--keys", type=Path, help="directory with the TEST public keys (default: fixtures/keys)")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--list", action="store_true", help="list the samples and exit")
    args = parser.parse_args(argv)

    requests = select(wire_requests(args.keys), args.channel, args.sample, args.all or args.list)
    if args.list:
        for r in requests:
            expect = f"  expect: {', '.join(r.expect)}" if r.expect else ""
            print(f"{r.channel:28} {r.name:22} {r.method:4} {r.url[:70]}{expect}")
        return 0
    if not requests:
        print("error: no sample matches --channel/--sample", file=sys.stderr)
        return 2
    try:
        proxy = parse_address(args.proxy) if args.proxy else _proxy_from_env()
        connect_to = parse_address(args.connect_to) if args.connect_to else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if proxy is None and connect_to is None:
        print("error: no proxy (--proxy or HTTPS_PROXY): refusing to send to the real vendors", file=sys.stderr)
        return 2
    ca = args.ca or _ca_from_env()
    failed = 0
    for request in requests:
        label = f"{request.channel}/{request.name}"
        try:
            response = send(request, proxy=None if connect_to else proxy, ca_file=ca, timeout=args.timeout,
                            connect_to=connect_to)
        except SendError as exc:
            failed += 1
            print(f"ERR {label}: {exc}")
            continue
        extra = f" ({len(request.ws_messages)} messages, {len(response.ws_replies)} replies)" if request.ws_messages else ""
        print(f"{response.status} {label} {request.method} {request.url[:80]}{extra}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
