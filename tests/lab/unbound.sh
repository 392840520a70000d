# unbound.sh: run a throw-away validating Unbound resolver for lab tests.
# Source it, then:
#   unbound_start DIR ADDR PORT ANCHORS ZONE=SERVER@PORT...
#       Unbound on ADDR@PORT (UDP and TCP), validating with the trust anchors
#       in the file ANCHORS (zone-file lines such as "zone. DNSKEY 257 3 13
#       ..."; "-" for none), with one stub zone per ZONE=SERVER@PORT argument
#       (the lab's authoritative servers). Every other name is REFUSED, so
#       the resolver never tries the root servers. RFC 8914 extended errors
#       are on (a Bogus answer is SERVFAIL with EDE). A delegation to a server
#       that never answers is SERVFAIL within about 2.5 s (two tries per
#       server, retransmit timeouts capped at 1 s, no silently discarded
#       client queries). Foreground process in
#       the background: pidfile DIR/unbound.pid, log DIR/unbound.log. Waits
#       (<= 5 s) until it answers.
#       UNBOUND_EXTRA (an array), when set, adds its lines to the server:
#       section (e.g. 'local-zone: "drop.example." deny').
#   unbound_stop DIR
#       SIGTERM by that PID, bounded wait, SIGKILL if it is still there.

. "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
unbound_start() {
    local dir=$1 addr=$2 port=$3 anchors=$4
    shift 4
    local stub zone server first="" i pid
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    {
        echo "server:"
        echo "    interface: $addr"
        echo "    port: $port"
        echo "    do-daemonize: no"
        echo "    username: \"\""
        echo "    chroot: \"\""
        echo "    directory: \"$dir\""
        echo "    pidfile: \"\""
        echo "    logfile: \"$dir/unbound.log\""
        echo "    use-syslog: no"
        echo "    verbosity: 1"
        echo "    infra-cache-max-rtt: 1000"
        echo "    outbound-msg-retry: 2"
        echo "    discard-timeout: 0"
        echo "    val-log-level: 2"
        echo "    num-threads: 1"
        echo "    so-reuseport: no"
        echo "    outgoing-range: 64"
        echo "    do-not-query-localhost: no"
        echo "    do-ip6: no"
        echo "    qname-minimisation: no"
        echo "    aggressive-nsec: no"
        echo "    ede: yes"
        echo "    module-config: \"validator iterator\""
        echo "    access-control: 127.0.0.0/8 allow"
        echo "    access-control: 192.0.2.0/24 allow"
        echo "    access-control: 198.51.100.0/24 allow"
        echo "    access-control: 203.0.113.0/24 allow"
        echo "    local-zone: \".\" refuse"
        echo "    local-zone: \"test.\" nodefault"
        if [ "$anchors" != "-" ]; then
            echo "    trust-anchor-file: \"$(cd "$(dirname "$anchors")" && pwd)/$(basename "$anchors")\""
        fi
        for stub in "$@"; do
            zone=${stub%%=*}
            echo "    local-zone: \"$zone\" transparent"
        done
        # extra server: lines from the caller (e.g. local-zone: "x." deny)
        [ -n "${UNBOUND_EXTRA:-}" ] && printf '    %s\n' "${UNBOUND_EXTRA[@]}"
        echo "remote-control:"
        echo "    control-enable: no"
        for stub in "$@"; do
            zone=${stub%%=*}
            server=${stub#*=}
            [ -n "$first" ] || first=$zone
            echo "stub-zone:"
            echo "    name: \"$zone\""
            echo "    stub-addr: $server"
            echo "    stub-prime: no"
        done
    } >"$dir/unbound.conf"
    unbound-checkconf "$dir/unbound.conf" >"$dir/checkconf.out" 2>&1 || {
        echo "unbound_start: bad configuration:" >&2
        cat "$dir/checkconf.out" >&2
        return 1
    }
    unbound -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/unbound.pid"
    for i in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "unbound_start: unbound exited:" >&2
            cat "$dir/unbound.out" "$dir/unbound.log" >&2 2>/dev/null
            return 1
        fi
        if kdig @"$addr" -p "$port" +timeout=1 +retry=0 SOA "${first:-.}" 2>/dev/null | grep -q 'status: '; then
            return 0
        fi
        sleep 0.1
    done
    echo "unbound_start: $addr@$port did not answer within 5 s" >&2
    unbound_stop "$dir"
    return 1
}

unbound_stop() {
    proc_stop "$1/unbound.pid"
}
