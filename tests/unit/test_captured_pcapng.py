"""The pcapng encoder's output, read back by scapy and by tshark."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6ND_RS, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.utils import PcapNgReader

from router7.captured import pcapng
from router7.captured.ring import PACKET_BROADCAST, PACKET_OUTGOING, Packet

T0 = 1_795_000_000_123_456_789  # ns, with a sub-microsecond part

DISCOVER = bytes(
    Ether(src="02:72:37:00:00:01", dst="ff:ff:ff:ff:ff:ff")
    / IP(src="0.0.0.0", dst="255.255.255.255")
    / UDP(sport=68, dport=67)
    / BOOTP(chaddr=bytes.fromhex("027237000001"))
    / DHCP(options=[("message-type", "discover"), "end"])
)
RS = bytes(
    Ether(src="02:72:37:00:01:01", dst="33:33:00:00:00:02")
    / IPv6(src="fe80::1", dst="ff02::2")
    / ICMPv6ND_RS()
)
WHO_HAS = bytes(
    Ether(src="02:72:37:00:01:10", dst="ff:ff:ff:ff:ff:ff")
    / ARP(hwsrc="02:72:37:00:01:10", psrc="192.168.42.10", pdst="192.168.42.1")
)

PACKETS = [
    (0, Packet(T0, "uplink0", DISCOVER, len(DISCOVER), PACKET_OUTGOING)),
    (1, Packet(T0 + 1_500, "lan0", RS, len(RS), PACKET_BROADCAST)),
    (1, Packet(T0 + 2_000_000_001, "lan0", WHO_HAS[:20], len(WHO_HAS))),  # truncated
]


def encode(packets=PACKETS, interfaces=("uplink0", "lan0"), snaplen=1600) -> bytes:
    return pcapng.header(interfaces, snaplen) + b"".join(
        pcapng.enhanced_packet(i, p) for i, p in packets
    )


def test_blocks_are_aligned_and_self_delimiting():
    data = encode()
    offset, types = 0, []
    while offset < len(data):
        block_type = int.from_bytes(data[offset : offset + 4], "little")
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        assert length % 4 == 0
        assert data[offset + length - 4 : offset + length] == data[offset + 4 : offset + 8]
        types.append(block_type)
        offset += length
    assert offset == len(data)
    assert types == [0x0A0D0D0A, 1, 1, 6, 6, 6]


def test_scapy_reads_interfaces_times_and_bytes():
    reader = PcapNgReader(io.BytesIO(encode()))
    got = list(reader)
    assert [(name, snaplen) for _, snaplen, name in _idbs(reader)] == [
        (b"uplink0", 1600),
        (b"lan0", 1600),
    ]
    assert [p.sniffed_on for p in got] == ["uplink0", "lan0", "lan0"]
    assert [bytes(p) for p in got] == [DISCOVER, RS, WHO_HAS[:20]]
    assert [p.wirelen for p in got] == [len(DISCOVER), len(RS), len(WHO_HAS)]
    assert str(got[0].time) == "1795000000.123456789"
    assert str(got[1].time) == "1795000000.123458289"
    assert [p.direction for p in got] == [2, 1, 1]
    assert got[0][DHCP].options[0] == ("message-type", 1)


def _idbs(reader):
    return [(linktype, snaplen, opts.get("name")) for linktype, snaplen, opts in reader.interfaces]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),
            st.integers(0, 2**63),
            st.binary(max_size=100),
            st.sampled_from([0, 1, 2, 3, 4, 7]),
        ),
        max_size=20,
    )
)
def test_any_packets_round_trip_through_scapy(items):
    packets = [(i, Packet(ts, ("a", "b")[i], data, len(data), kind)) for i, ts, data, kind in items]
    got = list(PcapNgReader(io.BytesIO(encode(packets, ("a", "b"), 65535))))
    # .original: the bytes as read (bytes(p) would rebuild, e.g. fill in an empty frame)
    assert [p.original for p in got] == [p.data for _, p in packets]
    assert [p.sniffed_on for p in got] == [p.ifname for _, p in packets]
    assert [int(p.time.scaleb(9)) for p in got] == [p.ts_ns for _, p in packets]


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_tshark_reads_it(tmp_path: Path):
    path = tmp_path / "c.pcapng"
    path.write_bytes(encode())
    fields = [
        "frame.interface_name",
        "frame.time_epoch",
        "frame.len",
        "frame.cap_len",
        "frame.packet_flags_direction",
        "dhcp.option.dhcp",
        "icmpv6.type",
        "arp.opcode",
    ]
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[0] for r in rows] == ["uplink0", "lan0", "lan0"]
    assert rows[0][1] == "1795000000.123456789"
    assert [(int(r[2]), int(r[3])) for r in rows] == [
        (len(DISCOVER), len(DISCOVER)),
        (len(RS), len(RS)),
        (len(WHO_HAS), 20),
    ]
    assert [int(r[4], 16) for r in rows] == [2, 1, 1]  # outbound, inbound, inbound
    assert rows[0][5] == "1"  # DHCPDISCOVER
    assert rows[1][6] == "133"  # router solicitation
