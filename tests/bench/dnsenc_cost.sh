#!/usr/bin/env bash
# dnsenc_cost.sh MPIC_BINARY [DURATION_MS] [N]: cost per query of UDP, DoT
# and DoH against the same unbound on loopback (the lab of
# tests/lab/test_dnsenc.sh: knot serving victim.test on 127.0.50.1:16600,
# unbound on 127.0.50.2 with UDP/TCP 16653, DoT 16654, DoH 16643, certificates
# from a throw-away CA). Runs tests/bench/dnsenc_cost.lua (defaults: 5000 ms,
# 32 tasks) and stops every server by PID. Take the lab lock first:
#   flock /tmp/mpic-lab.lock bash tests/bench/dnsenc_cost.sh build/mpic
set -u
MPIC=${1:?usage: dnsenc_cost.sh MPIC_BINARY [DURATION_MS] [N]}
DURATION=${2:-5000}
N=${3:-32}
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$(cd "$HERE/../lab" && pwd)
MPIC=$(cd "$(dirname "$MPIC")" && pwd)/$(basename "$MPIC")
WORK=$(mktemp -d /tmp/mpic-bench-dnsenc.XXXXXX)

. "$LAB/knot.sh"
. "$LAB/unbound.sh"
cleanup() {
    unbound_stop "$WORK/unbound"
    knot_stop "$WORK/knot"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$LAB/service/mkcerts.sh" "$WORK/certs" "resolver:DNS:resolver.test,IP:127.0.50.2" >/dev/null || exit 1
knot_start "$WORK/knot" 127.0.50.1 16600 "$LAB/zones/victim.test.zone" || exit 1
UNBOUND_EXTRA=(
    "interface: 127.0.50.2@16654"
    "interface: 127.0.50.2@16643"
    "tls-port: 16654"
    "https-port: 16643"
    "http-endpoint: \"/dns-query\""
    "tls-service-key: \"$WORK/certs/resolver.key\""
    "tls-service-pem: \"$WORK/certs/resolver.pem\""
    "incoming-num-tcp: 256"
    "verbosity: 0"
)
unbound_start "$WORK/unbound" 127.0.50.2 16653 - "victim.test=127.0.50.1@16600" || exit 1
for i in $(seq 1 50); do
    ss -ltn 2>/dev/null | grep -q " 127.0.50.2:16643 " && break
    sleep 0.1
done
cd "$HERE/../.." || exit 1
"$MPIC" run tests/bench/dnsenc_cost.lua 127.0.50.2:16653 "tls://127.0.50.2:16654#resolver.test" \
    "https://resolver.test:16643/dns-query#127.0.50.2" "$WORK/certs/ca.pem" "$DURATION" "$N"
