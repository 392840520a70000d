# dnssec/signed.sh: a throw-away Knot server that signs its zones itself
# (automatic DNSSEC signing, ECDSA P-256; keys live in DIR/keys and go away
# with DIR, nothing is committed). Source it after knot.sh, then:
#   signed_knot_start DIR ADDR PORT ZONEFILE...
#       starts knotd, waits (<= 10 s) until every zone answers with a DNSKEY,
#       and writes DIR/anchors: one unbound trust-anchor line ("zone. DNSKEY
#       257 3 13 ...") per zone, taken from the signed answer.
#   knot_stop DIR      (from knot.sh) stops it by its pidfile.
# SIGNED_KNOT_NSEC3, when set, signs with NSEC3 instead of NSEC (RFC 5155,
# 0 extra iterations, an 8-byte salt): "on", or "opt-out" for opt-out spans
# (unsigned delegations get no NSEC3 record of their own).

signed_knot_start() {
    local dir=$1 addr=$2 port=$3
    shift 3
    local zf origin origins="" i z ok
    mkdir -p "$dir/db" "$dir/keys" || return 1
    dir=$(cd "$dir" && pwd)
    {
        knot_conf_head "$dir" "$addr" "$port"
        echo "database:"
        echo "    storage: \"$dir/db\""
        echo "    kasp-db: \"$dir/keys\""
        echo "policy:"
        echo "  - id: lab"
        echo "    algorithm: ecdsap256sha256"
        case "${SIGNED_KNOT_NSEC3:-}" in
        "") echo "    nsec3: off" ;;
        on | opt-out)
            echo "    nsec3: on"
            echo "    nsec3-iterations: 0"
            echo "    nsec3-salt-length: 8"
            [ "$SIGNED_KNOT_NSEC3" = opt-out ] && echo "    nsec3-opt-out: on"
            ;;
        *) echo "signed_knot_start: SIGNED_KNOT_NSEC3 must be on or opt-out" >&2; return 1 ;;
        esac
        echo "template:"
        echo "  - id: default"
        echo "    storage: \"$dir\""
        echo "    zonefile-sync: -1"
        echo "    zonefile-load: whole"
        echo "    journal-content: changes"
        echo "    dnssec-signing: on"
        echo "    dnssec-policy: lab"
        echo "zone:"
        for zf in "$@"; do
            zf=$(cd "$(dirname "$zf")" && pwd)/$(basename "$zf")
            origin=$(awk '$1 == "$ORIGIN" { print $2; exit }' "$zf")
            [ -n "$origin" ] || { echo "signed_knot_start: no \$ORIGIN in $zf" >&2; return 1; }
            origins="$origins $origin"
            echo "  - domain: \"$origin\""
            echo "    file: \"$zf\""
        done
    } >"$dir/knot.conf"
    knotd -c "$dir/knot.conf" -s "$dir/knot.sock" >"$dir/knotd.out" 2>&1 &
    echo $! >"$dir/knotd.pid"
    : >"$dir/anchors"
    for z in $origins; do
        ok=0
        for i in $(seq 1 100); do
            if ! kill -0 "$(cat "$dir/knotd.pid")" 2>/dev/null; then
                echo "signed_knot_start: knotd exited; see $dir/knot.log" >&2
                cat "$dir/knotd.out" "$dir/knot.log" >&2 2>/dev/null
                return 1
            fi
            if kdig @"$addr" -p "$port" +timeout=1 +retry=0 +short DNSKEY "$z" 2>/dev/null | grep -q '^257 '; then
                ok=1
                break
            fi
            sleep 0.1
        done
        if [ $ok != 1 ]; then
            echo "signed_knot_start: $z not signed within 10 s" >&2
            knot_stop "$dir"
            return 1
        fi
        kdig @"$addr" -p "$port" +timeout=1 +retry=0 +short DNSKEY "$z" |
            awk -v z="$z" '$1 == 257 { k = ""; for (i = 4; i <= NF; i++) k = k $i; print z " DNSKEY " $1 " " $2 " " $3 " " k }' \
            >>"$dir/anchors"
    done
    return 0
}
