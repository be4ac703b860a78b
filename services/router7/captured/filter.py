"""The kernel packet filter: which frames captured keeps.

The classic BPF program is embedded as bytecode instead of being compiled at
runtime, so the router image needs neither tcpdump nor libpcap (scapy's
compile_filter shells out to tcpdump). It was generated with

    tcpdump -y EN10MB -i lo -s 262144 -dd '<FILTER_EXPRESSION>'

(tcpdump 4.99.3, libpcap 1.10.3); regenerate it the same way when the
expression changes. tests/unit/test_captured_filter.py runs this bytecode on
sample frames, so a stale program fails the tests.
"""

from __future__ import annotations

import ctypes
import socket
import struct

FILTER_EXPRESSION = (
    "arp"
    " or (udp and (port 67 or port 68 or port 546 or port 547))"  # DHCPv4, DHCPv6
    " or (icmp6 and ip6[40] >= 133 and ip6[40] <= 137)"  # RS, RA, NS, NA, redirect
)

# (code, jt, jf, k) per instruction: struct sock_filter.
PROGRAM: tuple[tuple[int, int, int, int], ...] = (
    (0x28, 0, 0, 0x0000000C),
    (0x15, 33, 0, 0x00000806),
    (0x15, 0, 12, 0x00000800),
    (0x30, 0, 0, 0x00000017),
    (0x15, 0, 31, 0x00000011),
    (0x28, 0, 0, 0x00000014),
    (0x45, 29, 0, 0x00001FFF),
    (0xB1, 0, 0, 0x0000000E),
    (0x48, 0, 0, 0x0000000E),
    (0x15, 25, 0, 0x00000043),
    (0x15, 24, 0, 0x00000044),
    (0x15, 23, 0, 0x00000222),
    (0x15, 22, 0, 0x00000223),
    (0x48, 0, 0, 0x00000010),
    (0x15, 20, 10, 0x00000043),
    (0x15, 0, 20, 0x000086DD),
    (0x30, 0, 0, 0x00000014),
    (0x15, 0, 10, 0x00000011),
    (0x28, 0, 0, 0x00000036),
    (0x15, 15, 0, 0x00000043),
    (0x15, 14, 0, 0x00000044),
    (0x15, 13, 0, 0x00000222),
    (0x15, 12, 0, 0x00000223),
    (0x28, 0, 0, 0x00000038),
    (0x15, 10, 0, 0x00000043),
    (0x15, 9, 0, 0x00000044),
    (0x15, 8, 0, 0x00000222),
    (0x15, 7, 8, 0x00000223),
    (0x15, 0, 2, 0x0000002C),
    (0x30, 0, 0, 0x00000036),
    (0x15, 5, 0, 0x00000011),
    (0x15, 0, 4, 0x0000003A),
    (0x30, 0, 0, 0x00000036),
    (0x35, 0, 2, 0x00000085),
    (0x25, 1, 0, 0x00000089),
    (0x6, 0, 0, 0x00040000),
    (0x6, 0, 0, 0x00000000),
)

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)


def attach(sock: socket.socket, program=PROGRAM) -> None:
    """Attach ``program`` to ``sock`` (SO_ATTACH_FILTER takes a struct sock_fprog)."""
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the
    # native "HP" layout includes the padding before the pointer. The kernel
    # copies the program during the call, so buf only has to outlive it.
    fprog = struct.pack("HP", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
