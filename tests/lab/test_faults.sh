#!/usr/bin/env bash
# test_faults.sh MPIC: validations against servers that misbehave and names
# that point at internal addresses. Every verdict fails closed, within its
# deadline. Lab on 127.0.96.0/24: knot (faults.test, faults.example.com) and
# faultweb.py servers.
set -u
mpic=${1:?usage: test_faults.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/knot.sh"
work=$(mktemp -d /tmp/mpic-faults.XXXXXX)
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    knot_stop "$work/knot"
    rm -rf "$work"
}
trap cleanup EXIT
PORT=15680
knot_start "$work/knot" 127.0.96.1 15653 "$here/faults/faults.test.zone" \
    "$here/faults/faults.example.com.zone" || exit 1
n=11
for mode in endless-headers drip silent; do
    python3 "$here/faultweb.py" 127.0.96.$n $PORT $mode &
    pids+=($!)
    n=$((n + 1))
done
for n in 11 12 13; do
    for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.96.$n/$PORT) 2>/dev/null && break; sleep 0.1; done
done
perspectives() {
    local id rir lat lon p
    for p in primary:ARIN:39.04:-77.49 pdx:ARIN:45.52:-122.68 fra:RIPE:50.11:8.68 sto:RIPE:59.33:18.07 \
             sgp:APNIC:1.35:103.82 syd:APNIC:-33.87:151.21 gru:LACNIC:-23.55:-46.63; do
        IFS=: read -r id rir lat lon <<<"$p"
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"127.0.96.1:15653\"]}"
    done
}
for mode in lab strict; do
    allow=true
    [ $mode = strict ] && allow=false
    {
        echo "issuer: {caa_domains: [ca.example]}"
        echo "policy: $root/policies/br.lua"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 3000}"
        echo "network: {allow_reserved_ips: $allow, http_port: $PORT}"
        echo "audit: {path: $work/audit-$mode.jsonl, fsync: false}"
        echo "primary: primary"
        echo "perspectives:"
        perspectives
    } >"$work/$mode.yaml"
done
export MPIC_LAB_FAULTS_LAB=$work/lab.yaml MPIC_LAB_FAULTS_STRICT=$work/strict.yaml
"$mpic" test "$root/tests/lua/faults"
