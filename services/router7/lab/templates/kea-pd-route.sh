#!/bin/sh
# kea-dhcp6 run_script hook, rendered by router7-lab (placeholders: @DEV@ @LOG@).
#
# A BNG must route every delegated prefix to the CPE that holds it, or PD
# traffic dies silently. Kea only hands out the lease, so this hook installs
# `ip -6 route replace <prefix> via <cpe> dev @DEV@` when a PD lease is
# committed/renewed/rebound and deletes it on release/expiry/decline.
# Kea 2.2 passes everything in env vars (LEASES6_AT<i>_*, LEASE6_*,
# QUERY6_REMOTE_ADDR, ...) and $1 is the hook point; PATH may be unset.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
DEV='@DEV@'
LOG='@LOG@'
hook="$1"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') $hook: $*" >>"$LOG"; }

# Keep the raw environment of every call: it documents kea's variable names.
# One write per call, so concurrent (sync: false) calls do not interleave.
block=$(
    echo "--- $(date '+%Y-%m-%dT%H:%M:%S') $hook"
    env | grep -E '^(QUERY6|LEASE6|LEASES6|DELETED_LEASES6)_' | sort
)
printf '%s\n' "$block" >>"$LOG.env"

# The CPE's next hop: the packet's link-local source (always on-link, even
# when the CPE has not configured its IA_NA address yet), else its IA_NA.
nexthop() {
    case "$QUERY6_REMOTE_ADDR" in
        fe80:* | FE80:*) echo "$QUERY6_REMOTE_ADDR"; return ;;
    esac
    if [ -n "$1" ]; then echo "$1"; else echo "$QUERY6_REMOTE_ADDR"; fi
}

add_route() { # prefix len na_addr
    via=$(nexthop "$3")
    if [ -z "$via" ]; then
        log "no next hop for $1/$2"
        return
    fi
    if ip -6 route replace "$1/$2" via "$via" dev "$DEV" proto static 2>>"$LOG"; then
        log "route $1/$2 via $via dev $DEV"
    else
        log "FAILED route $1/$2 via $via dev $DEV"
    fi
}

del_route() { # prefix len
    if ip -6 route del "$1/$2" dev "$DEV" 2>/dev/null; then
        log "removed $1/$2"
    fi
}

# Walk LEASES6_AT<i>_* or DELETED_LEASES6_AT<i>_* (arg: variable prefix).
# Prints "type address prefix_len" per lease.
leases() {
    eval "n=\${$1_SIZE:-0}"
    i=0
    while [ "$i" -lt "$n" ]; do
        eval "echo \"\${$1_AT${i}_TYPE} \${$1_AT${i}_ADDRESS} \${$1_AT${i}_PREFIX_LEN}\""
        i=$((i + 1))
    done
}

case "$hook" in
    leases6_committed)
        leases DELETED_LEASES6 | while read -r type addr len; do
            [ "$type" = IA_PD ] && del_route "$addr" "$len"
        done
        na=$(leases LEASES6 | awk '$1 == "IA_NA" { print $2; exit }')
        leases LEASES6 | while read -r type addr len; do
            [ "$type" = IA_PD ] && add_route "$addr" "$len" "$na"
        done
        ;;
    lease6_renew | lease6_rebind)
        [ "$LEASE6_TYPE" = IA_PD ] && add_route "$LEASE6_ADDRESS" "$LEASE6_PREFIX_LEN" ""
        ;;
    lease6_release | lease6_expire | lease6_decline)
        [ "$LEASE6_TYPE" = IA_PD ] && del_route "$LEASE6_ADDRESS" "$LEASE6_PREFIX_LEN"
        ;;
esac
exit 0
