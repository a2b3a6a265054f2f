"""The namespace helper: a stand-alone program (stdlib only) that becomes the command.

Run by `inspector.verify.netns` as ``python -I -S nsinit.py FD SPEC -- COMMAND...`` with the
command's environment and working directory. It enters a new network (and UTS) namespace —
and a new user namespace first when it is not root, which is what lets an unprivileged user
do this —, brings loopback up, makes every address local to it (so a connection to any
address, even a literal one, stays in the namespace), sets the host name, opens the sockets
the inspector serves the namespace with, hands them over the control socket FD, waits for
the word to go and then executes COMMAND. Nothing it opens survives the exec.

It is single-threaded on purpose: unshare(CLONE_NEWUSER) refuses a multi-threaded caller,
which the inspector (mitmproxy's threads) is.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import sys

CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
EXIT_SETUP = 125


def unshare(flags: int) -> None:
    if hasattr(os, "unshare"):
        os.unshare(flags)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def enter_namespaces(want_uts: bool) -> bool:
    """New network (+UTS) namespace; through a user namespace when not root. True: userns."""
    flags = CLONE_NEWNET | (CLONE_NEWUTS if want_uts else 0)
    if os.geteuid() == 0:
        unshare(flags)
        return False
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER | flags)
    # The same ids inside: files keep their owner, and the command is no more root than before.
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")
    return True


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def local_route(family: int) -> None:
    """`ip route add local default dev lo table local` over rtnetlink: every address is ours."""
    # the kernel's names (linux/rtnetlink.h, linux/netlink.h)
    RTM_NEWROUTE, NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL = 24, 1, 4, 0x400, 0x200  # noqa: N806
    RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_HOST, RTN_LOCAL, RTA_OIF = 255, 3, 254, 2, 4  # noqa: N806
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.bind((0, 0))
        body = struct.pack("BBBBBBBBI", family, 0, 0, 0, RT_TABLE_LOCAL, RTPROT_BOOT, RT_SCOPE_HOST,
                           RTN_LOCAL, 0)
        body += struct.pack("HHI", 8, RTA_OIF, socket.if_nametoindex("lo"))
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        nl.send(struct.pack("IHHII", 16 + len(body), RTM_NEWROUTE, flags, 1, 0) + body)
        answer = nl.recv(4096)
        if len(answer) >= 20:
            error = struct.unpack("i", answer[16:20])[0]
            if error:
                raise OSError(-error, os.strerror(-error))


def tcp_listener(port: int, loopback_only: bool = False) -> socket.socket:
    if loopback_only:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    else:
        sock = dual_stack(socket.SOCK_STREAM, port)
    sock.listen(128)
    return sock


def dual_stack(kind: int, port: int) -> socket.socket:
    """One socket for IPv4 and IPv6 ([::] with V6ONLY off), or IPv4 alone without IPv6."""
    try:
        sock = socket.socket(socket.AF_INET6, kind)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        return sock
    except OSError:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))  # noqa: S104 - inside the namespace: every address is the inspector
        return sock


def packet_socket(program: list[list[int]]) -> socket.socket:
    """Every packet on loopback (the namespace's only interface), filtered in the kernel."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    sock.bind(("lo", ETH_P_ALL))
    if program:
        code = b"".join(struct.pack("HBBI", *insn) for insn in program)
        buffer = ctypes.create_string_buffer(code)
        fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError:
            pass  # unfiltered: the reader skips what it does not need
    return sock


def setup(spec: dict) -> tuple[list[dict], list[socket.socket], list[str], bool]:
    notes: list[str] = []
    userns = enter_namespaces(bool(spec.get("hostname")))
    loopback_up()
    for family, name in ((socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6")):
        try:
            local_route(family)
        except OSError as exc:
            notes.append(f"no catch-all {name} route ({exc.strerror}): literal {name} addresses are unreachable")
    if spec.get("hostname"):
        socket.sethostname(spec["hostname"])
    described: list[dict] = []
    sockets: list[socket.socket] = []
    if spec.get("proxy_port"):
        sockets.append(tcp_listener(int(spec["proxy_port"]), loopback_only=True))
        described.append({"role": "proxy", "port": int(spec["proxy_port"])})
    for port in spec.get("tcp_ports", []):
        sockets.append(tcp_listener(int(port)))
        described.append({"role": "tcp", "port": int(port)})
    if spec.get("dns"):
        sockets.append(dual_stack(socket.SOCK_DGRAM, 53))
        described.append({"role": "dns", "port": 53})
    try:
        sockets.append(packet_socket(spec.get("filter", [])))
        described.append({"role": "packets"})
    except OSError as exc:
        notes.append(f"no packet monitor ({exc.strerror}): refused traffic is not listed")
    return described, sockets, notes, userns


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[3] != "--":
        print("nsinit: usage: nsinit.py FD SPEC -- COMMAND...", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(argv[1]))
    os.set_inheritable(control.fileno(), False)  # closed by exec: the parent's sign that it ran
    command = argv[4:]
    try:
        spec = json.loads(argv[2])
        described, sockets, notes, userns = setup(spec)
    except (OSError, ValueError) as exc:
        message = getattr(exc, "strerror", None) or str(exc)
        control.send(json.dumps({"error": f"cannot isolate: {message}"}).encode())
        return EXIT_SETUP
    header = json.dumps({"sockets": described, "notes": notes, "userns": userns}).encode()
    socket.send_fds(control, [header], [s.fileno() for s in sockets])
    for sock in sockets:
        sock.close()  # the inspector holds them now
    if control.recv(16) != b"go":
        return EXIT_SETUP  # the inspector went away: run nothing unwatched
    try:
        os.execvp(command[0], command)  # noqa: S606 - the user's command, as given
    except OSError as exc:
        control.send(json.dumps({"exec_error": f"{command[0]}: {exc.strerror}"}).encode())
        return 127
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
