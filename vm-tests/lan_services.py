# The LAN side: DHCPv4 for two hosts (one by name, one by a static lease), DNS for
# their names and reverse lookups, a port forwarding from the ISP side to a LAN
# host, and nothing else answering on the uplink: a port scan from the ISP finds
# only the forwarded port.
import ipaddress
import json

from router7.lab.scenario import LAN_GW, LAN_LEASES, LAN_V4, LEASE6, read_json, wait_online

STATIC = "192.168.42.200"
MARKER = "served by the LAN host behind a port forwarding"


def lan_link(machine):
    """(ifname, MAC) of `machine`'s link on the LAN, once it has a LAN address."""
    machine.wait_until_succeeds(f"ip -4 addr show to {LAN_V4} | grep -q inet")
    links = json.loads(machine.succeed(f"ip -j -4 addr show to {LAN_V4}"))
    link = next(link for link in links if any("local" in a for a in link.get("addr_info", [])))
    mac = json.loads(machine.succeed(f"ip -j link show dev {link['ifname']}"))[0]["address"]
    return link["ifname"], mac


def write(path, obj):
    router.succeed(f"printf '%s\\n' '{json.dumps(obj)}' > {path}.tmp && mv {path}.tmp {path}")


def open_ports(output):
    """{host: ports reported as exactly 'open'} from nmap's grepable output (-oG -),
    with every host nmap scanned, even one where nothing is open."""
    found = {}
    for line in output.splitlines():
        if not line.startswith("Host: "):
            continue
        ports = found.setdefault(line.split()[1], set())
        if "Ports:" in line:
            for entry in line.split("Ports:")[1].split("\t")[0].split(","):
                if not entry.strip():  # "Ports: <tab>Ignored State: filtered (65535)"
                    continue
                port, state, proto = entry.strip().split("/")[:3]
                if state == "open":
                    ports.add(f"{port}/{proto}")
    return found


def scan(options, hosts):
    """open_ports of an nmap scan of `hosts` that reached every one of them: nmap
    leaves out a host whose neighbour entry it could not resolve (a busy VM may
    answer too late), and a host left out would pass for one with nothing open."""
    for _ in range(3):
        found = open_ports(isp.succeed(f"nmap -Pn -n -oG - {options} {' '.join(hosts)}"))
        if set(found) == set(hosts):
            return found
    raise AssertionError(f"nmap {options}: never reached {sorted(set(hosts) - set(found))}")


start_all()
up = wait_online(router, lan)
lan_if, lan_mac = lan_link(lan)
lan2_if, lan2_mac = lan_link(lan2)

with subtest("a static lease: lan2 gets its fixed address and name"):
    write(
        "/perm/dhcp4d/config.json",
        {"static_leases": {lan2_mac: {"addr": STATIC, "hostname": "printer"}}},
    )
    router.systemctl("kill -s USR1 router7-dhcp4d")
    # Like a cable replugged: dhcpcd asks for its old address, gets a NAK, starts over.
    lan2.succeed(f"ip link set {lan2_if} down && ip link set {lan2_if} up")
    lan2.wait_until_succeeds(f"ip -4 addr show dev {lan2_if} | grep -qF 'inet {STATIC}/24'")

with subtest("DHCPv4 and DNS for both hosts, forward and reverse"):
    me = str(up.lan_v4.ip)
    leases = {lease["hardware_addr"]: lease for lease in read_json(router, LAN_LEASES)}
    name = leases[lan_mac]["hostname_override"] or leases[lan_mac]["hostname"]
    assert leases[lan2_mac]["addr"] == STATIC, leases[lan2_mac]
    for host, addr in ((name, me), ("printer", STATIC)):
        for query in (host, f"{host}.lan"):
            got = lan.wait_until_succeeds(f"dig @{LAN_GW} +short {query} A").split()
            assert got == [addr], f"{query}: {got}"
        assert lan2.succeed(f"dig @{LAN_GW} +short -x {addr}").split() == [f"{host}.lan."]
    lan.succeed(f"dig @{LAN_GW} nosuchhost.lan | grep -q 'status: NXDOMAIN'")

with subtest("a port forwarding from the ISP side to lan2"):
    lan2.succeed(
        f"d=$(mktemp -d) && echo '{MARKER}' > $d/index.html && "
        f"(python3 -m http.server 8000 --directory $d </dev/null >/dev/null 2>&1 &)"
    )
    lan2.wait_for_open_port(8000)
    write(
        "/perm/portforwardings.json",
        {
            "forwardings": [
                {"proto": "tcp", "port": "8080", "dest_addr": STATIC, "dest_port": "8000"}
            ]
        },
    )
    router.systemctl("kill -s USR1 router7-netconfigd")
    got = isp.wait_until_succeeds(f"curl -sSf --max-time 5 http://{up.wan.ip}:8080/")
    assert got.strip() == MARKER, got

with subtest("a port scan from the ISP finds only the forwarded port"):
    wan = str(up.wan.ip)
    # All of TCP at 2000 probes/s per address (a minute each); the IPv6 addresses in
    # one scan at once, which takes the time of one.
    tcp = "-sS -p- -T4 --max-retries 1"
    udp = "-sU -p 53,67,68,123,546,547,5353,7733,8053"
    assert scan(f"{tcp} --min-rate 2000", [wan]) == {wan: {"8080/tcp"}}
    assert scan(udp, [wan]) == {wan: set()}
    leased6 = read_json(router, LEASE6)["addresses"]
    v6 = [str(ipaddress.ip_address(a["address"])) for a in leased6] + [str(up.lan64[1])]
    nothing = {a: set() for a in v6}
    both = f"-6 --min-hostgroup {len(v6)}"
    assert scan(f"{tcp} --min-rate {2000 * len(v6)} {both}", v6) == nothing
    assert scan(f"{udp} {both}", v6) == nothing
