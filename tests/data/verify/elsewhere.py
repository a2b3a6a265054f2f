"""Traffic a namespace must refuse: TCP to argv[1] (HOST:PORT) and a QUIC-like UDP datagram."""

import socket
import sys
import time

host, _, port = sys.argv[1].rpartition(":")
try:
    socket.create_connection((host, int(port)), timeout=3).close()
    print("tcp connected")
except OSError as exc:
    print("tcp failed:", exc)
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\xc0quic-initial", (socket.gethostbyname("quic.telemetry.example"), 443))
        time.sleep(0.2)
except OSError as exc:
    print("udp failed:", exc)
