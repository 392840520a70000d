# knot.sh: shell helpers to run throw-away Knot DNS authoritative servers
# for lab tests. Source it, then:
#   knot_start DIR ADDR PORT [ZONEFILE...]   # writes DIR/knot.conf, starts knotd,
#                                            # waits (<= 5 s) until it answers
#   knot_stop DIR                            # stops it by the PID in DIR/knotd.pid
# Each zone's origin is read from the $ORIGIN line of its file. A server with
# no zones answers REFUSED to everything. Works as root (knotd keeps root:root).

. "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
# knot_conf_head DIR ADDR PORT: the server and log sections of a lab knot.conf
knot_conf_head() {
    echo "server:"
    echo "    rundir: \"$1\""
    echo "    listen: \"$2@$3\""
    echo "    udp-workers: 1"
    echo "    tcp-workers: 1"
    echo "    background-workers: 1"
    echo "log:"
    echo "  - target: \"$1/knot.log\""
    echo "    any: info"
}

knot_start() {
    local dir=$1 addr=$2 port=$3
    shift 3
    local zf origin first="" i
    mkdir -p "$dir/db" || return 1
    dir=$(cd "$dir" && pwd)
    {
        knot_conf_head "$dir" "$addr" "$port"
        echo "database:"
        echo "    storage: \"$dir/db\""
        echo "template:"
        echo "  - id: default"
        echo "    storage: \"$dir\""
        echo "    zonefile-sync: -1"
        echo "    zonefile-load: whole"
        echo "    journal-content: none"
        if [ $# -gt 0 ]; then
            echo "zone:"
        fi
        for zf in "$@"; do
            zf=$(cd "$(dirname "$zf")" && pwd)/$(basename "$zf")
            origin=$(awk '$1 == "$ORIGIN" { print $2; exit }' "$zf")
            if [ -z "$origin" ]; then
                echo "knot_start: no \$ORIGIN in $zf" >&2
                return 1
            fi
            [ -n "$first" ] || first=$origin
            echo "  - domain: \"$origin\""
            echo "    file: \"$zf\""
        done
    } >"$dir/knot.conf"
    knotd -c "$dir/knot.conf" -s "$dir/knot.sock" >"$dir/knotd.out" 2>&1 &
    echo $! >"$dir/knotd.pid"
    # wait until it answers (a zone's SOA, or any status when it has none)
    for i in $(seq 1 50); do
        if ! kill -0 "$(cat "$dir/knotd.pid")" 2>/dev/null; then
            echo "knot_start: knotd exited; see $dir/knotd.out and $dir/knot.log" >&2
            cat "$dir/knotd.out" "$dir/knot.log" >&2 2>/dev/null
            return 1
        fi
        if [ -n "$first" ]; then
            kdig @"$addr" -p "$port" +timeout=1 +retry=0 SOA "$first" 2>/dev/null |
                grep -q 'status: NOERROR' && return 0
        else
            kdig @"$addr" -p "$port" +timeout=1 +retry=0 SOA . 2>/dev/null |
                grep -q 'status: ' && return 0
        fi
        sleep 0.1
    done
    echo "knot_start: $addr@$port did not answer within 5 s" >&2
    knot_stop "$dir"
    return 1
}

knot_stop() {
    proc_stop "$1/knotd.pid"
}
