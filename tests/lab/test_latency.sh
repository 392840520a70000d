#!/usr/bin/env bash
# test_latency.sh MPIC: perspectives behind DNS paths with different delays
# (and one lossy path), through tests/lab/dnsdelay.py relays in front of one
# knot. Delay and loss change when the verdict comes, never what it is; the
# verdict comes once the quorum is complete, before the slowest perspective.
set -u
mpic=${1:?usage: test_latency.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/knot.sh"
work=$(mktemp -d /tmp/mpic-latency.XXXXXX)
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    knot_stop "$work/knot"
    rm -rf "$work"
}
trap cleanup EXIT
PORT=15653
knot_start "$work/knot" 127.0.95.1 $PORT "$here/demo/shop.test.legit.zone" || exit 1

# id rir lat lon delay_ms loss_percent
PERSPECTIVES="primary:ARIN:39.04:-77.49:0:0 pdx:ARIN:45.52:-122.68:20:0 fra:RIPE:50.11:8.68:40:0 sto:RIPE:59.33:18.07:60:0 sgp:APNIC:1.35:103.82:80:0 syd:APNIC:-33.87:151.21:100:0 gru:LACNIC:-23.55:-46.63:400:0"
write_config() { # FILE LOSSY_ID LOSS
    local i=10 p id rir lat lon delay loss
    {
        echo "issuer: {caa_domains: [ca.example]}"
        echo "policy: $root/policies/br.lua"
        echo "selection_secret: latency"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 5000, dns_timeout_ms: 300, dns_tries: 4, dns_lifetime_ms: 3000}"
        echo "network: {allow_reserved_ips: true}"
        echo "audit: {path: $work/audit.jsonl, fsync: false}"
        echo "primary: primary"
        echo "perspectives:"
        for p in $PERSPECTIVES; do
            IFS=: read -r id rir lat lon delay loss <<<"$p"
            echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"127.0.95.$i:$PORT\"]}"
            i=$((i + 1))
        done
    } >"$1"
}
start_relays() { # LOSSY_ID LOSS
    local i=10 p id rir lat lon delay loss
    for p in $PERSPECTIVES; do
        IFS=: read -r id rir lat lon delay loss <<<"$p"
        [ "$id" = "$1" ] && loss=$2
        python3 "$here/dnsdelay.py" 127.0.95.$i $PORT 127.0.95.1 $PORT "$delay" "$loss" 7 &
        pids+=($!)
        i=$((i + 1))
    done
}
start_relays fra 40
# wait until every relay answers (bounded)
for i in $(seq 10 16); do
    for _ in $(seq 1 50); do
        kdig @127.0.95.$i -p $PORT +timeout=1 +retry=3 SOA shop.test 2>/dev/null | grep -q 'status: NOERROR' && break
        sleep 0.1
    done
done
write_config "$work/latency.yaml"
export MPIC_LAB_LATENCY_CONFIG=$work/latency.yaml
"$mpic" test "$root/tests/lua/latency"
