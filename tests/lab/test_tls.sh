#!/usr/bin/env bash
# test_tls.sh MPIC_BINARY: the TLS-ALPN lab. Generates the certificates
# (mkcerts.sh), starts one openssl s_server per certificate variant plus the
# misbehaving servers on 127.0.0.61 (ports 15443+) and ::1, exports their
# ports as MPIC_LAB_TLS_* and runs `MPIC test tests/lua/tls`.
set -u
mpic=${1:?usage: test_tls.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/tls.sh"

work=$(mktemp -d /tmp/mpic-tls-lab.XXXXXX)
names=()
cleanup() {
    local n
    for n in "${names[@]}"; do tls_server_stop "$work" "$n"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "test_tls.sh: $*" >&2; exit 1; }

ADDR=127.0.0.61
bash "$here/mkcerts.sh" "$work/certs" >/dev/null || die "certificate generation failed"
C=$work/certs

export MPIC_LAB_TLS_ADDR=$ADDR
export MPIC_LAB_TLS_ADDR6=::1
export MPIC_LAB_TLS_KEY_AUTH
MPIC_LAB_TLS_KEY_AUTH=$(cat "$C/key_authorization")

port=15443
while read -r v; do
    names+=("$v")
    tls_server_start "$work" "$v" $ADDR $port "$C/$v.pem" "$C/$v.key" -alpn acme-tls/1 ||
        die "server $v failed to start"
    export "MPIC_LAB_TLS_PORT_$(echo "$v" | tr a-z A-Z)=$port"
    port=$((port + 1))
done <"$C/variants"

start() { # NAME PORTVAR PORT CMD...
    local name=$1 var=$2 p=$3
    shift 3
    names+=("$name")
    "$@" || die "$name failed to start"
    export "MPIC_LAB_TLS_PORT_$var=$p"
}
start noalpn NOALPN 15470 tls_server_start "$work" noalpn $ADDR 15470 "$C/valid_dns.pem" "$C/valid_dns.key"
start tls11 TLS11 15471 tls_server_start "$work" tls11 $ADDR 15471 "$C/valid_dns.pem" "$C/valid_dns.key" \
    -alpn acme-tls/1 -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
start http HTTP 15472 tls_http_start "$work" http $ADDR 15472
start otheralpn OTHERALPN 15473 tls_server_start "$work" otheralpn $ADDR 15473 "$C/valid_dns.pem" "$C/valid_dns.key" \
    -alpn other/1
start silent SILENT 15474 tls_silent_start "$work" silent $ADDR 15474
start blackhole BLACKHOLE 15475 tls_blackhole_start "$work" blackhole $ADDR 15475
start garbage GARBAGE 15480 tls_silent_start "$work" garbage $ADDR 15480 "SSH-2.0-OpenSSH_9.2 not tls at all"
export MPIC_LAB_TLS_PORT_REFUSED=15476 # nothing listens there
start tls12 TLS12 15477 tls_server_start "$work" tls12 $ADDR 15477 "$C/valid_dns.pem" "$C/valid_dns.key" \
    -alpn acme-tls/1 -tls1_2
start v6 V6 15478 tls_server_start "$work" v6 ::1 15478 "$C/valid_ipv6.pem" "$C/valid_ipv6.key" -alpn acme-tls/1
# SNI: the reverse name of 127.0.0.61 selects the IPv4 certificate, anything else wrong_name
start sni SNI 15479 tls_server_start "$work" sni $ADDR 15479 "$C/wrong_name.pem" "$C/wrong_name.key" \
    -alpn acme-tls/1 -servername 61.0.0.127.in-addr.arpa -cert2 "$C/valid_ipv4.pem" -key2 "$C/valid_ipv4.key"

cd "$root" || die "no $root"
"$mpic" test tests/lua/tls
