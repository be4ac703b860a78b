"""The embedded BPF program keeps DHCPv4/v6, ND/RA and ARP and nothing else.

A small classic-BPF interpreter (the kernel's semantics for the opcodes tcpdump
emits: out-of-bounds loads reject the packet) runs the exact bytecode that is
attached to the capture sockets on frames built with scapy. The integration
test checks the same on real sockets.
"""

import operator
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Reply, DHCP6_Solicit
from scapy.layers.dns import DNS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, Ether

from router7.captured.filter import FILTER_EXPRESSION, PROGRAM

ALU = {
    0x00: operator.add,
    0x10: operator.sub,
    0x20: operator.mul,
    0x30: operator.floordiv,
    0x40: operator.or_,
    0x50: operator.and_,
    0x60: operator.lshift,
    0x70: operator.rshift,
}


def run_bpf(program, packet: bytes) -> int:
    """Return the program's verdict: the number of bytes to keep, 0 = drop."""
    a = x = 0
    mem = [0] * 16
    pc = 0
    sizes = {0x00: 4, 0x08: 2, 0x10: 1}
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0x00, 0x01):  # LD, LDX
            mode, size = code & 0xE0, sizes[code & 0x18]
            if mode == 0x00:  # IMM
                value = k
            elif mode in (0x20, 0x40, 0xA0):  # ABS, IND, MSH
                offset = k + (x if mode == 0x40 else 0)
                if offset + size > len(packet):
                    return 0  # the kernel rejects a packet on an out-of-bounds load
                value = int.from_bytes(packet[offset : offset + size], "big")
                if mode == 0xA0:
                    value = 4 * (value & 0x0F)
            elif mode == 0x60:  # MEM
                value = mem[k]
            elif mode == 0x80:  # LEN
                value = len(packet)
            else:
                raise NotImplementedError(hex(code))
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x03:  # STX
            mem[k] = x
        elif cls == 0x04:  # ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            a = (-a if op == 0x80 else ALU[op](a, operand)) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            taken = {
                0x10: a == operand,
                0x20: a > operand,
                0x30: a >= operand,
                0x40: bool(a & operand),
            }[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x10 else k
        elif cls == 0x07:  # MISC: TAX / TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        else:
            raise NotImplementedError(hex(code))


def accepts(frame) -> bool:
    return run_bpf(PROGRAM, bytes(frame)) > 0


E = Ether(src="02:72:37:00:00:01", dst="ff:ff:ff:ff:ff:ff")
E6 = Ether(src="02:72:37:00:00:01", dst="33:33:00:00:00:01")
V4 = IP(src="192.0.2.23", dst="192.0.2.1")
V6 = IPv6(src="fe80::1", dst="ff02::1")


WANTED = {
    "dhcp4 discover": E
    / IP(src="0.0.0.0", dst="255.255.255.255")
    / UDP(sport=68, dport=67)
    / BOOTP()
    / DHCP(options=[("message-type", "discover"), "end"]),
    "dhcp4 reply": E / V4 / UDP(sport=67, dport=68) / BOOTP(op=2) / DHCP(options=["end"]),
    "dhcp4 with ip options": E
    / IP(src="192.0.2.1", dst="192.0.2.23", options=b"\x01" * 8)
    / UDP(sport=67, dport=68)
    / BOOTP(op=2),
    "dhcp6 solicit": E6
    / IPv6(src="fe80::1", dst="ff02::1:2")
    / UDP(sport=546, dport=547)
    / DHCP6_Solicit(),
    "dhcp6 reply": E6 / V6 / UDP(sport=547, dport=546) / DHCP6_Reply(),
    "router solicitation": E6 / IPv6(src="fe80::1", dst="ff02::2") / ICMPv6ND_RS(),
    "router advertisement": E6 / V6 / ICMPv6ND_RA(),
    "neighbour solicitation": E6 / V6 / ICMPv6ND_NS(tgt="fe80::2"),
    "neighbour advertisement": E6 / V6 / ICMPv6ND_NA(tgt="fe80::2"),
    "redirect": E6 / V6 / ICMPv6ND_Redirect(),
    "arp request": E / ARP(pdst="192.168.42.1"),
    "arp reply": Ether(src="02:72:37:00:00:02", dst="02:72:37:00:00:01") / ARP(op=2),
}

UNWANTED = {
    "tcp to ssh": E / V4 / TCP(sport=40000, dport=5022),
    "tcp from port 67": E / V4 / TCP(sport=67, dport=68),
    "tcp over ipv6": E6 / IPv6(src="fe80::1", dst="fe80::2") / TCP(dport=5080),
    "dns": E / V4 / UDP(sport=5353, dport=53) / DNS(),
    "icmp echo": E / V4 / ICMP(),
    "icmpv6 echo": E6 / V6 / ICMPv6EchoRequest(),
    "mld report": E6
    / IPv6(src="fe80::1", dst="ff02::16")
    / IPv6ExtHdrHopByHop()
    / ICMPv6MLReport2(),
    "non-first ipv4 fragment": E
    / IP(src="192.0.2.1", dst="192.0.2.23", frag=100, proto=17)
    / struct.pack(">HH", 67, 68),
    "dhcp6 port in a fragment": E6 / V6 / IPv6ExtHdrFragment(nh=17) / UDP(sport=547, dport=546),
    "ipx-ish ethertype": Ether(type=0x8137) / (b"\x00" * 40),
    "runt": Ether(type=0x0800) / b"\x45",
}


@pytest.mark.parametrize("name", sorted(WANTED))
def test_filter_accepts(name):
    assert accepts(WANTED[name]), name


@pytest.mark.parametrize("name", sorted(UNWANTED))
def test_filter_rejects(name):
    assert not accepts(UNWANTED[name]), name


def test_accepted_frames_are_kept_whole():
    assert run_bpf(PROGRAM, bytes(WANTED["router advertisement"])) >= 65535


def test_program_matches_its_expression():
    # A reminder for whoever edits one without regenerating the other.
    assert "arp" in FILTER_EXPRESSION and "546" in FILTER_EXPRESSION
    assert len(PROGRAM) == 37
    assert PROGRAM[-1] == (0x6, 0, 0, 0) and PROGRAM[-2][0] == 0x6


@given(st.binary(max_size=200))
def test_interpreter_never_crashes_on_junk(frame):
    assert run_bpf(PROGRAM, frame) in (0, 0x40000)
