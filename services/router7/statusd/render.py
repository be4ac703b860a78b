"""The status page as server-rendered HTML: no JavaScript, one small style sheet.

Every value from a state file, diagd or the request goes through ``_e`` (HTML
escaping, quotes included, so values are safe in attributes too). Elements that
carry a value have a ``data-k`` attribute, which the browser test reads.
"""

from __future__ import annotations

import html

from router7.statusd.links import PAGES, Links

CSS = """
:root{--bg:#f4f6f9;--card:#fff;--fg:#1b2330;--muted:#5f6b7a;--line:#e3e7ee;--ok:#15803d;
 --okbg:#e3f6e8;--bad:#b91c1c;--badbg:#fde8e8;--warn:#92400e;--warnbg:#fef3c7;--link:#1d4ed8;
 --code:#eef1f5}
@media (prefers-color-scheme:dark){:root{--bg:#11151b;--card:#1a2029;--fg:#e6e9ee;
 --muted:#9aa5b4;--line:#2b3440;--ok:#4ade80;--okbg:#12301e;--bad:#f87171;--badbg:#3a1618;
 --warn:#fbbf24;--warnbg:#3a2d0e;--link:#93c5fd;--code:#242c37}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
a{color:var(--link)}
header{padding:1rem 1rem .25rem;max-width:78rem;margin:0 auto}
h1{font-size:1.3rem;margin:0 0 .6rem}
h2{font-size:1rem;margin:0 0 .6rem;display:flex;justify-content:space-between;gap:.5rem;
 align-items:baseline}
h2 small{font-weight:400;font-size:.8rem}
main{display:grid;gap:1rem;padding:1rem;max-width:78rem;margin:0 auto;
 grid-template-columns:minmax(0,1fr);align-items:start}
/* Phones: one column in reading order. Tablets: the two uplinks side by side.
   Desktops: facts on the left, the diagnosis and tools on the right. */
.col,.pair{display:contents}
#uplink4,#uplink6{order:1}#diag{order:2}#lan{order:3}#services{order:4}#tools{order:5}
@media (min-width:48rem){.pair{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));
 gap:1rem;align-items:start;order:1}}
@media (min-width:72rem){main{grid-template-columns:minmax(0,2fr) minmax(0,1fr)}
 .col{display:flex;flex-direction:column;gap:1rem}}
section{background:var(--card);border-radius:.7rem;padding:.9rem 1rem;
 box-shadow:0 1px 3px rgba(0,0,0,.08);min-width:0}
.verdict{padding:.7rem 1rem;border-radius:.6rem;font-weight:600;overflow-wrap:anywhere}
.verdict.ok{background:var(--okbg);color:var(--ok)}
.verdict.bad{background:var(--badbg);color:var(--bad)}
.verdict.warn{background:var(--warnbg);color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .9rem;margin:0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
code{background:var(--code);padding:.05rem .3rem;border-radius:.25rem;overflow-wrap:anywhere}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}.small{font-size:.85rem}
.err{background:var(--badbg);color:var(--bad);padding:.6rem .8rem;border-radius:.5rem;
 margin:.4rem 0;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem .35rem 0;border-bottom:1px solid var(--line);
 vertical-align:top}
th{color:var(--muted);font-weight:500;font-size:.85rem}
tr:last-child td{border-bottom:0}
.dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.4rem;
 background:var(--bad)}.dot.on{background:var(--ok)}
.tag{font-size:.75rem;padding:.05rem .4rem;border-radius:.8rem;background:var(--code);
 color:var(--muted);white-space:nowrap}
.tag.ok{background:var(--okbg);color:var(--ok)}.tag.bad{background:var(--badbg);color:var(--bad)}
ul.checks{list-style:none;margin:0;padding:0}
ul.checks li{padding:.3rem 0;border-bottom:1px solid var(--line)}
ul.checks li:last-child{border-bottom:0}
ul.checks li.depth1{padding-left:1rem}ul.checks li.depth2{padding-left:2rem}
ul.checks li.depth3{padding-left:3rem}ul.checks li[class^="depth"]:not(.depth0,.depth1,.depth2,
.depth3){padding-left:4rem}
.mark{font-weight:700;margin-right:.35rem}.mark.ok{color:var(--ok)}.mark.bad{color:var(--bad)}
.expired{opacity:.6}
ul.tools{margin:0;padding-left:1.1rem}ul.tools li{margin:.35rem 0}
footer{max-width:78rem;margin:0 auto;padding:0 1rem 1.5rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){main{padding:.6rem;gap:.6rem}section{padding:.8rem}
 .hide-narrow{display:none}
 table.cards thead{display:none}
 table.cards tr{display:flex;flex-wrap:wrap;align-items:baseline;gap:.15rem .8rem;
  padding:.45rem 0;border-bottom:1px solid var(--line)}
 table.cards tr:last-child{border-bottom:0}
 table.cards td{border:0;padding:0}
 table.cards td:first-child{flex-basis:100%;font-weight:600}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def duration(seconds: float | int | None) -> str:
    """1 d 3 h, 2 h 05 min, 4 min 10 s, 12 s."""
    if seconds is None:
        return "?"
    s = int(abs(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m:02d} min"
    if m >= 10:
        return f"{m} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def relative(seconds: float | int | None) -> str:
    if seconds is None:
        return ""
    return f"in {duration(seconds)}" if seconds > 0 else f"{duration(seconds)} ago"


def _clock(iso: str, remaining: int | None) -> str:
    """A short absolute time: 01:06 UTC within the day, else with the date."""
    date, _, time = iso.rstrip("Z").partition("T")
    short = f"{time[:5]} UTC"
    return short if remaining is not None and abs(remaining) < 20 * 3600 else f"{date} {short}"


def _when(iso: str | None, remaining: int | None, key: str) -> str:
    if iso is None:
        return '<span class="muted">unknown</span>'
    return (
        f'<time datetime="{_e(iso)}" title="{_e(iso)}" data-k="{_e(key)}">'
        f"{_e(relative(remaining))}</time> "
        f'<span class="muted small nowrap">{_e(_clock(iso, remaining))}</span>'
    )


def section_problem(section: dict, missing: str) -> str | None:
    """HTML for a missing or broken file, None when the section has data."""
    if section["state"] == "missing":
        return (
            f'<p class="muted" data-k="missing">{_e(missing)} '
            f'<span class="small">(<code>{_e(section["file"])}</code> does not exist yet)</span></p>'
        )
    if section["state"] == "error":
        return _error(section["error"])
    return None


def _error(err: dict) -> str:
    field = f" field <code>{_e(err['field'])}</code>:" if err.get("field") else ""
    return (
        f'<div class="err" data-k="error">Cannot read <code>{_e(err["file"])}</code>:'
        f"{field} {_e(err['reason'])}</div>"
    )


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>"


def _list(values: list[str], key: str) -> str:
    if not values:
        return '<span class="muted">none</span>'
    return "<br>".join(f'<span class="mono" data-k="{_e(key)}">{_e(v)}</span>' for v in values)


def uplink4(s: dict) -> str:
    body = section_problem(s, "No DHCPv4 lease yet.")
    if body is None:
        state = (
            '<span class="tag bad">expired</span>'
            if s["expired"]
            else '<span class="tag ok">valid</span>'
        )
        body = _dl(
            [
                ("Address", f'<span class="mono" data-k="v4-address">{_e(s["address"])}</span>'),
                (
                    "Gateway",
                    f'<span class="mono" data-k="v4-gateway">{_e(s["gateway"] or "none")}</span>',
                ),
                ("DNS", _list(s["dns"], "v4-dns")),
                (
                    "Lease",
                    f"{state} expires {_when(s['expires_at'], s['expires_in'], 'v4-expiry')}",
                ),
                ("Renews", _when(s["renew_at"], s["renew_in"], "v4-renew")),
                ("Server", f'<span class="mono">{_e(s["server"] or "unknown")}</span>'),
            ]
        )
    return f'<section id="uplink4"><h2>Internet · IPv4</h2>{body}</section>'


def _held(items: list[dict], key: str, what: str) -> str:
    if not items:
        return '<span class="muted">none</span>'
    out = []
    for p in items:
        cls = ' class="expired"' if p["expired"] else ""
        out.append(
            f'<div{cls}><span class="mono" data-k="{what}">{_e(p[key])}</span><br>'
            f'<span class="small">preferred {_when(p["preferred_until"], p["preferred_in"], what + "-preferred")}'
            f"<br>valid {_when(p['valid_until'], p['valid_in'], what + '-valid')}</span></div>"
        )
    return "".join(out)


def uplink6(s: dict) -> str:
    body = section_problem(s, "No DHCPv6 lease yet.")
    if body is None:
        rows = [("Delegated prefix", _held(s["prefixes"], "prefix", "v6-prefix"))]
        if s["addresses"]:
            rows.append(("Address", _held(s["addresses"], "address", "v6-address")))
        rows.append(("DNS", _list(s["dns"], "v6-dns")))
        rows.append(("Renews", _when(s["renew_at"], s["renew_in"], "v6-renew")))
        if s["previous_prefixes"]:
            rows.append(
                ("Previous prefixes", _held(s["previous_prefixes"], "prefix", "v6-previous"))
            )
        body = _dl(rows)
    return f'<section id="uplink6"><h2>Internet · IPv6</h2>{body}</section>'


def diag(s: dict, links: Links) -> str:
    head = (
        f'<h2>Diagnostics <small><a href="{_e(links.url(links.diagd_port))}">'
        "check tree</a></small></h2>"
    )
    if s["state"] != "ok":
        body = (
            f'<div class="verdict warn" data-k="diag-unavailable">diagd not answering</div>'
            f'<p class="muted small">{_e(s["url"])}: {_e(s["reason"])}</p>'
        )
        return f'<section id="diag">{head}{body}</section>'
    items = []
    for c in s["checks"]:
        mark = '<span class="mark ok">✔</span>' if c["ok"] else '<span class="mark bad">✘</span>'
        extra = "" if c["counts"] else ' <span class="tag">not counted</span>'
        items.append(
            f'<li class="depth{int(c.get("depth", 0))}" data-k="check" '
            f'data-ok="{str(c["ok"]).lower()}">{mark}'
            f"<strong>{_e(c['name'])}</strong>{extra}<br>"
            f'<span class="muted small">{_e(c["status"])}</span></li>'
        )
    checks = f'<ul class="checks">{"".join(items)}</ul>' if items else ""
    return f'<section id="diag">{head}{checks}</section>'


def verdict(s: dict) -> str:
    if s["state"] != "ok":
        return '<div class="verdict warn">Health unknown: diagd not answering</div>'
    if s["healthy"]:
        return '<div class="verdict ok" data-k="healthy">✔ Everything checked works</div>'
    return f'<div class="verdict bad" data-k="first-error">✘ {_e(s["first_error"])}</div>'


def lan(s: dict) -> str:
    if s["state"] != "ok":
        body = section_problem(s, "No LAN leases yet.")
        count = ""
    else:
        active = sum(1 for x in s["leases"] if x["active"])
        count = f"<small>{active} active of {len(s['leases'])}</small>"
        rows = []
        for x in s["leases"]:
            if x["static"]:
                lease = '<span class="tag">static</span>'
            elif x["active"]:
                lease = f'<span class="tag ok">active</span> {_when(x["expiry"], x["expires_in"], "lan-expiry")}'
            else:
                lease = f'<span class="tag">expired</span> <span class="muted small">{_e(relative(x["expires_in"]))}</span>'
            cls = "" if x["active"] else ' class="expired"'
            rows.append(
                f'<tr{cls} data-k="lease" data-mac="{_e(x["hardware_addr"])}">'
                f'<td data-k="lan-hostname">{_e(x["hostname"]) or "<span class=muted>–</span>"}</td>'
                f'<td class="mono" data-k="lan-addr">{_e(x["addr"])}</td>'
                f'<td class="mono" data-k="lan-mac">{_e(x["hardware_addr"])}</td>'
                f'<td class="hide-narrow" data-k="lan-vendor">{_e(x["vendor"])}</td>'
                f"<td>{lease}</td></tr>"
            )
        if rows:
            body = (
                '<div class="scroll"><table class="cards"><thead><tr><th>Host</th><th>Address</th>'
                '<th>MAC</th><th class="hide-narrow">Vendor</th><th>Lease</th></tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table></div>"
            )
        else:
            body = '<p class="muted">No LAN leases yet.</p>'
        body += "".join(_error(err) for err in s.get("errors", []))
    return f'<section id="lan"><h2>LAN clients {count}</h2>{body}</section>'


def services(items: list[dict], links: Links) -> str:
    rows = []
    for svc in items:
        name = svc["name"]
        state = (
            '<span class="dot on"></span>running'
            if svc["running"]
            else '<span class="dot"></span>not running'
        )
        uptime = duration(svc["uptime_seconds"]) if svc["uptime_seconds"] is not None else ""
        tools = []
        page = links.page(name)
        if page:
            tools.append(f'<a href="{_e(page)}">{_e(PAGES[name])}</a>')
        metrics = links.metrics(name)
        if metrics:
            tools.append(f'<a href="{_e(metrics)}">metrics</a>')
        rows.append(
            f'<tr data-k="service" data-name="{_e(name)}" data-running="{str(svc["running"]).lower()}">'
            f'<td><strong>{_e(name)}</strong></td><td class="nowrap">{state}</td>'
            f'<td class="muted nowrap">{_e(uptime)}</td><td>{" · ".join(tools)}</td></tr>'
        )
    up = sum(1 for s in items if s["running"])
    return (
        f'<section id="services"><h2>Services <small>{up} of {len(items)} running</small></h2>'
        '<div class="scroll"><table><thead><tr><th>Service</th><th>State</th><th>Up</th>'
        f"<th>Links</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def system(info: dict | None) -> str:
    """The running image and the last update's result (router7-updated, docs/updates.md)."""
    if not info:
        return ""
    slot = info.get("slot") or "netboot"
    trial = " (update on trial)" if info.get("trial") else ""
    last = info.get("last_update")
    if last:
        what = (
            f"{_e(last.get('result'))}: {_e(last.get('from_version'))} → "
            f"{_e(last.get('to_version'))}"
            + (
                f' <span class="muted small">{_e(last.get("reason"))}</span>'
                if last.get("reason")
                else ""
            )
        )
    else:
        what = '<span class="muted">none yet</span>'
    return (
        '<section id="system"><h2>System</h2><ul class="tools">'
        f'<li>version <code data-k="version">{_e(info.get("version"))}</code>, '
        f'slot <strong data-k="slot">{_e(slot)}</strong>{_e(trial)}</li>'
        f'<li data-k="last-update">last update: {what}</li></ul></section>'
    )


def tools(links: Links) -> str:
    capture = links.url(links.capture_port, "/capture.pcapng")
    ring = links.url(links.capture_port, "/capture.pcapng?live=0")
    backup = links.url(links.backup_port, "/backup.tar.gz")
    ssh = f"ssh -p {links.capture_ssh_port} {links.ssh_host} | wireshark -k -i -"
    curl = f"curl -sN {capture} | wireshark -k -i -"
    return (
        '<section id="tools"><h2>Debugging</h2><ul class="tools">'
        f'<li><a href="{_e(ring)}" data-k="capture-link">Download the capture</a> '
        '<span class="muted small">(recent DHCP, ND/RA and ARP packets, pcapng)</span></li>'
        f'<li>Live in Wireshark: <code data-k="capture-ssh">{_e(ssh)}</code> '
        f"or <code>{_e(curl)}</code></li>"
        f'<li><a href="{_e(backup)}" data-k="backup-link">Download a backup</a> '
        '<span class="muted small">(everything in /perm, tar.gz)</span></li>'
        '<li><a href="/status.json">status.json</a> · <a href="/metrics">metrics</a></li>'
        "</ul></section>"
    )


def failover(s: dict | None) -> str:
    """Which uplink carries the traffic; nothing with one uplink (no state file)."""
    if not s or s.get("state") == "missing" or len(s.get("uplinks", [])) < 2:
        if s and s.get("state") == "error":
            return f'<section id="failover"><h2>Uplinks</h2>{_error(s["error"])}</section>'
        return ""
    rows = [
        (
            "Active",
            f'<span class="mono" data-k="failover-active">{_e(s["active"])}</span> since '
            f'{_e(s["since"])} <span class="muted small">({_e(s["reason"])})</span>',
        )
    ]
    for u in s["uplinks"]:
        tag = '<span class="tag ok">up</span>' if u["up"] else '<span class="tag bad">down</span>'
        rows.append(
            (
                _e(u["name"]),
                f'{tag} <span class="muted small">priority {_e(u["priority"])}, '
                f"{_e(u['reason'])}</span>",
            )
        )
    rows.append(("Switches", f'<span data-k="failover-transitions">{_e(s["transitions"])}</span>'))
    return f'<section id="failover"><h2>Uplinks</h2>{_dl(rows)}</section>'


def page(status: dict, links: Links) -> bytes:
    left = (
        f'<div class="col"><div class="pair">{uplink4(status["uplink4"])}'
        f"{uplink6(status['uplink6'])}</div>{failover(status.get('failover'))}"
        f"{lan(status['lan'])}"
        f"{services(status['services'], links)}</div>"
    )
    right = (
        f'<div class="col">{diag(status["diag"], links)}{system(status.get("system"))}'
        f"{tools(links)}</div>"
    )
    body = left + right
    when = status["generated_at"].replace("T", " ").replace("Z", " UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>router7 status</title><style>{CSS}</style></head><body>"
        f"<header><h1>router7</h1>{verdict(status['diag'])}</header>"
        f"<main>{body}</main>"
        f'<footer>As of <span data-k="generated-at">{_e(when)}</span> · '
        '<a href="/">reload</a></footer></body></html>\n'
    ).encode()


def credential_banner(token: str) -> bytes:
    """``<body>`` plus the admin credential, shown once (router7.runtime.auth)."""
    return (
        '<body><section style="border:2px solid #b00;padding:0.5em;margin:0.5em 0">'
        "<b>Admin credential</b> (shown only this once; write it down): "
        f"<code>{html.escape(token)}</code><br>Changes (renaming a device) and backups ask "
        "for user <code>admin</code> and this password. It is also in "
        "<code>/perm/admin/token</code> on the router.</section>"
    ).encode()
