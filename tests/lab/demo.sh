#!/usr/bin/env bash
# demo.sh start|stop DIR: the minimal lab behind `mpic demo` (no root needed).
# Two authoritative Knot servers on loopback serve shop.test: the owner's view
# on 127.0.20.1 and an attacker's view on 127.0.20.2. A perspective whose
# resolver is the attacker's server is "hijacked": it sees the attacker's
# dns-01 record, as it would after a BGP or DNS hijack of its path.
# Writes DIR/perspectives-*.yaml; stops every process it started by PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/knot.sh"
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: demo.sh start|stop DIR" >&2; exit 2; }
PORT=${MPIC_DEMO_PORT:-15353}

# perspectives: id rir lat lon
PERSPECTIVES="primary:ARIN:39.04:-77.49 pdx:ARIN:45.52:-122.68 fra:RIPE:50.11:8.68 sto:RIPE:59.33:18.07 sgp:APNIC:1.35:103.82 syd:APNIC:-33.87:151.21 gru:LACNIC:-23.55:-46.63"

# write_config FILE HIJACKED...: perspectives listed in HIJACKED resolve
# through the attacker's server.
write_config() {
    local file=$1; shift
    local hijacked=" $* "
    {
        echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
        echo "policy: $here/../../policies/br.lua"
        echo "selection_secret: demo-secret"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 3000, dns_timeout_ms: 1000, dns_tries: 2}"
        echo "network: {allow_reserved_ips: true}"
        echo "audit: {path: $dir/audit.jsonl}"
        echo "primary: primary"
        echo "perspectives:"
        local p id rir lat lon server
        for p in $PERSPECTIVES; do
            IFS=: read -r id rir lat lon <<<"$p"
            server=127.0.20.1
            case "$hijacked" in *" $id "*) server=127.0.20.2 ;; esac
            echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$server:$PORT\"]}"
        done
    } >"$file"
}

case "$cmd" in
start)
    mkdir -p "$dir"
    knot_start "$dir/legit" 127.0.20.1 "$PORT" "$here/demo/shop.test.legit.zone" || exit 1
    if ! knot_start "$dir/attacker" 127.0.20.2 "$PORT" "$here/demo/shop.test.attacker.zone"; then
        knot_stop "$dir/legit"; exit 1
    fi
    write_config "$dir/perspectives-one-hijacked.yaml" fra
    write_config "$dir/perspectives-most-hijacked.yaml" primary pdx sto syd
    ;;
stop)
    knot_stop "$dir/attacker"
    knot_stop "$dir/legit"
    ;;
*) echo "usage: demo.sh start|stop DIR" >&2; exit 2 ;;
esac
