#!/usr/bin/env bash
# test_dnsenc.sh MPIC_BINARY: encrypted resolver transports, DNS-over-TLS
# (RFC 7858) and DNS-over-HTTPS (RFC 8484), against a real resolver.
#
# Unbound is the resolver: Debian's 1.17 serves DoT (tls-port) and DoH
# (https-port, HTTP/2 through nghttp2) from the same process and cache as
# its UDP/TCP port, so the same resolver answers over all three and the
# answers can be compared one to one; it is also the resolver the other labs
# use. (knot-resolver is not packaged for Debian 12; dnsdist is a proxy that
# would need a resolver behind it.) Starts, on 127.0.50.0/24:
#   .1:16600  knot serving victim.test (tests/lab/zones/victim.test.zone)
#   .2        unbound in front of it: UDP/TCP 16653, DoT 16654, DoH 16643
#             (/dns-query), certificate for resolver.test and 127.0.50.2
#             from a throw-away lab CA; dead.test is delegated to .9, where
#             nothing answers (SERVFAIL); TLS connections idle for 1.5 s are
#             closed by unbound (reconnection)
#   .3        a TLS server that completes the handshake (same certificate)
#             and never answers, on 16654 (DoT) and 16643 (DoH)
#   .4:16654  nothing listening (connection refused)
# then runs `MPIC test tests/lua/dnsenc` (MPIC_LAB_ENC_* variables), a
# validation through DoT and DoH perspectives with `mpic validate`, and
# stops everything by PID.
set -u
MPIC=${1:?usage: test_dnsenc.sh MPIC_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MPIC=$(cd "$(dirname "$MPIC")" && pwd)/$(basename "$MPIC")
WORK=$(mktemp -d /tmp/mpic-lab-dnsenc.XXXXXX)
PIDS=()

. "$HERE/knot.sh"
. "$HERE/unbound.sh"

cleanup() {
    local pid i
    unbound_stop "$WORK/unbound"
    knot_stop "$WORK/knot"
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "test_dnsenc.sh: $*" >&2
    exit 1
}

bash "$HERE/service/mkcerts.sh" "$WORK/certs" "resolver:DNS:resolver.test,IP:127.0.50.2,IP:127.0.50.3" \
    >/dev/null || fail "cannot make the lab certificates"

knot_start "$WORK/knot" 127.0.50.1 16600 "$HERE/zones/victim.test.zone" || fail "knot did not start"

UNBOUND_EXTRA=(
    "interface: 127.0.50.2@16654"
    "interface: 127.0.50.2@16643"
    "tls-port: 16654"
    "https-port: 16643"
    "http-endpoint: \"/dns-query\""
    "tls-service-key: \"$WORK/certs/resolver.key\""
    "tls-service-pem: \"$WORK/certs/resolver.pem\""
    "tcp-idle-timeout: 1500"
    "rrset-roundrobin: no"
    "incoming-num-tcp: 64"
    "local-zone: \"dead.test\" transparent"
)
# the stubs: victim.test at knot, dead.test at an address where nothing answers
unbound_start "$WORK/unbound" 127.0.50.2 16653 - "victim.test=127.0.50.1@16600" \
    "dead.test=127.0.50.9@16609" || fail "unbound did not start"

cat >"$WORK/silent.py" <<'EOF'
# A TLS server that completes handshakes and never answers: reads and drops.
import socket, ssl, sys, threading
addr, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])

def conn(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
        while t.recv(4096):
            pass
    except Exception:
        pass

def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()

for p in (int(x) for x in sys.argv[4:]):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait(3600)
EOF
python3 "$WORK/silent.py" 127.0.50.3 "$WORK/certs/resolver.pem" "$WORK/certs/resolver.key" 16654 16643 \
    >"$WORK/silent.log" 2>&1 &
PIDS+=($!)

# every TLS listener up before the tests start (bounded waits)
for hp in 127.0.50.2:16654 127.0.50.2:16643 127.0.50.3:16654 127.0.50.3:16643; do
    up=0
    for i in $(seq 1 50); do
        if ss -ltn 2>/dev/null | grep -q " $hp "; then
            up=1
            break
        fi
        sleep 0.1
    done
    [ $up = 1 ] || fail "nothing listens on $hp"
done
kdig @127.0.50.2 -p 16654 +tls +tls-ca="$WORK/certs/ca.pem" +tls-hostname=resolver.test +timeout=2 \
    +retry=0 A victim.test 2>&1 | grep -q 'status: NOERROR' || fail "unbound does not answer over DoT"

export MPIC_LAB_ENC_UDP=127.0.50.2:16653
export MPIC_LAB_ENC_DOT="tls://127.0.50.2:16654#resolver.test"
export MPIC_LAB_ENC_DOT_IP="tls://127.0.50.2:16654"
export MPIC_LAB_ENC_DOH="https://resolver.test:16643/dns-query#127.0.50.2"
export MPIC_LAB_ENC_DOH_IP="https://127.0.50.2:16643/dns-query"
export MPIC_LAB_ENC_DOT_SILENT="tls://127.0.50.3:16654#resolver.test"
export MPIC_LAB_ENC_DOH_SILENT="https://resolver.test:16643/dns-query#127.0.50.3"
export MPIC_LAB_ENC_DOT_CLOSED="tls://127.0.50.4:16654#resolver.test"
export MPIC_LAB_ENC_CA=$WORK/certs/ca.pem
export MPIC_LAB_ENC_ROGUE_CA=$WORK/certs/rogue-ca.pem

cd "$ROOT" || exit 1
"$MPIC" test "$ROOT/tests/lua/dnsenc" || exit 1

# A validation through DoT and DoH perspectives: acme-dns-01 and CAA, the
# primary on DoT, remotes on DoH, DoT by address, and a mixed list.
cat >"$WORK/perspectives.yaml" <<EOF
issuer:
  caa_domains: ["ca.example"]
network:
  allow_reserved_ips: true
audit:
  path: $WORK/audit.jsonl
  fsync: false
defaults:
  perspective_count: 6
  max_attempts: 1
  dns_timeout_ms: 1000
  dns_tries: 2
primary: dot
perspectives:
  - { id: dot, rir: ARIN, location: { lat: 39.04, lon: -77.49 }, resolvers: ["$MPIC_LAB_ENC_DOT"], resolver_ca: $WORK/certs/ca.pem }
  - { id: doh, rir: ARIN, location: { lat: 45.52, lon: -122.68 }, resolvers: ["$MPIC_LAB_ENC_DOH"], resolver_ca: $WORK/certs/ca.pem }
  - { id: doh-ip, rir: RIPE, location: { lat: 50.11, lon: 8.68 }, resolvers: ["$MPIC_LAB_ENC_DOH_IP"], resolver_ca: $WORK/certs/ca.pem }
  - { id: dot-ip, rir: RIPE, location: { lat: 59.33, lon: 18.07 }, resolvers: ["$MPIC_LAB_ENC_DOT_IP"], resolver_ca: $WORK/certs/ca.pem }
  - { id: mixed, rir: APNIC, location: { lat: 1.35, lon: 103.82 }, resolvers: ["$MPIC_LAB_ENC_DOT_SILENT", "$MPIC_LAB_ENC_DOH", "$MPIC_LAB_ENC_UDP"], resolver_ca: $WORK/certs/ca.pem }
  - { id: dot2, rir: APNIC, location: { lat: -33.87, lon: 151.21 }, resolvers: ["$MPIC_LAB_ENC_DOT"], resolver_ca: $WORK/certs/ca.pem }
  - { id: doh2, rir: LACNIC, location: { lat: -23.55, lon: -46.63 }, resolvers: ["$MPIC_LAB_ENC_DOH"], resolver_ca: $WORK/certs/ca.pem }
EOF
"$MPIC" check-config --config "$WORK/perspectives.yaml" >"$WORK/check.out" 2>&1 ||
    fail "check-config refused the lab configuration: $(cat "$WORK/check.out")"
"$MPIC" validate --config "$WORK/perspectives.yaml" --check dcv --method acme-dns-01 --target victim.test \
    --param key_authorization_hash=7FwkJPsKf-TH54wu4eiIFA3nhzYaevsL7953ihy-tpo >"$WORK/dcv.out" 2>&1 ||
    fail "acme-dns-01 through DoT/DoH perspectives was not valid: $(cat "$WORK/dcv.out")"
"$MPIC" validate --config "$WORK/perspectives.yaml" --check caa --target victim.test >"$WORK/caa.out" 2>&1 ||
    fail "CAA through DoT/DoH perspectives was not valid: $(cat "$WORK/caa.out")"
# a wrong key authorization is not valid through the same perspectives
if "$MPIC" validate --config "$WORK/perspectives.yaml" --check dcv --method acme-dns-01 --target victim.test \
    --param key_authorization_hash=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA >"$WORK/bad.out" 2>&1; then
    fail "a wrong acme-dns-01 value was valid: $(cat "$WORK/bad.out")"
fi
# a perspective whose resolver certificate does not verify fails closed
sed -e "s#resolver_ca: $WORK/certs/ca.pem#resolver_ca: $WORK/certs/rogue-ca.pem#" \
    "$WORK/perspectives.yaml" >"$WORK/rogue.yaml"
sed -i -e "s#audit.jsonl#audit-rogue.jsonl#" "$WORK/rogue.yaml"
if "$MPIC" validate --config "$WORK/rogue.yaml" --check caa --target victim.test --json >"$WORK/rogue.out" 2>&1; then
    fail "CAA was valid although no resolver certificate verifies: $(cat "$WORK/rogue.out")"
fi
grep -q "certificate does not verify" "$WORK/rogue.out" ||
    fail "the refusal does not name the certificate: $(cat "$WORK/rogue.out")"
# a bad resolver entry is refused with a clear message
sed -e "s#\"$MPIC_LAB_ENC_DOH_IP\"#\"https://127.0.50.2:16643/\"#" "$WORK/perspectives.yaml" >"$WORK/badurl.yaml"
if "$MPIC" check-config --config "$WORK/badurl.yaml" >"$WORK/badurl.out" 2>&1; then
    fail "check-config accepted a DoH URL without a path"
fi
grep -q "names the query path" "$WORK/badurl.out" || fail "unclear message: $(cat "$WORK/badurl.out")"
echo "test_dnsenc.sh: validations through DoT and DoH perspectives passed"
exit 0
