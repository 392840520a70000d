#!/usr/bin/env bash
# lab.sh start|stop DIR: the full loopback lab for scenario tests (no root).
#
# A hijackable little Internet on 127.0.80.0/24 (DNS on port 15300/15301,
# HTTP on 15380, TLS-ALPN on 15443). A perspective's resolver decides which
# view it gets, as a BGP or DNS hijack of its path would:
#   .1:15300  knot, the owner's view of scen.test       (MPIC_LAB_DNS_LEGIT)
#   .2:15300  knot, the attacker's view of scen.test    (MPIC_LAB_DNS_EVIL)
#   .3:15300  unbound that holds a trust anchor for scen.test, which is not
#             signed: every answer is Bogus -> SERVFAIL (MPIC_LAB_DNS_BROKEN)
#   .4:15300  a UDP socket that never answers           (MPIC_LAB_DNS_BLACKHOLE)
#   .5:15301  knot signing sec.test and bogus.sec.test (dnssec/*.zone; the
#             parent's DS for bogus.sec.test matches none of its keys)
#   .6:15300  unbound validating sec.test with its KSK as trust anchor
#                                                        (MPIC_LAB_DNS_VALIDATING)
#   .10       the victim's servers: nginx :15380 (http-01, website-change,
#             redirects), openssl s_server -alpn acme-tls/1 :15443 with the
#             owner's acmeIdentifier certificate
#   .11       the attacker's servers: nginx :15380, s_server :15443 with a
#             certificate for the attacker's key authorization
# In the owner's view www/files/tls.scen.test point at .10, in the attacker's
# at .11. caa-methods.scen.test permits ca.example for dns-01 only (RFC 8657
# validationmethods), in both views. DIR/lab.env holds the exports (addresses, tokens, key
# authorizations); every process is stopped by its pidfile on `stop`.
# DIR and its parents must be searchable by nginx's workers (user nobody).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/knot.sh"
. "$here/nginx.sh"
. "$here/tls.sh"
. "$here/unbound.sh"
. "$here/dnssec/signed.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: lab.sh start|stop DIR" >&2; exit 2; }

NET=127.0.80
DNS_PORT=15300
SEC_PORT=15301
HTTP_PORT=15380
TLS_PORT=15443
VICTIM=$NET.10
ATTACKER=$NET.11

# Challenge material (tokens are public in ACME; the key authorizations are
# token "." account-thumbprint, made up for the lab).
OWNER_TOKEN=ownerTok-LabToken_0123456789abcdefgh
OWNER_KA=$OWNER_TOKEN.ownerThumbprint-0123456789abcdefghijklmnopq
EVIL_TOKEN=evilTok-LabToken_0123456789abcdefghij
EVIL_KA=$EVIL_TOKEN.evilThumbprint-0123456789abcdefghijklmnopqr
REDIR_TOKEN=redirTok-LabToken_0123456789abcdefgh
REDIR_KA=$REDIR_TOKEN.ownerThumbprint-0123456789abcdefghijklmnopq
OWNER_WEB_VALUE=owner-random-value-7b1f0c2e9a
EVIL_WEB_VALUE=attacker-random-value-41d9e0

b64url_sha256() { printf '%s' "$1" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='; }
hex_sha256() { printf '%s' "$1" | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n'; }
hexcolon_sha256() { printf '%s' "$1" | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -s ' \n' ':' | sed 's/^://; s/:$//'; }

zone() { # FILE WEBADDR TXTVALUE CAA_PERMIT_LINE CAA_FORBID_LINE CAA_METHODS_LINE
    cat >"$1" <<ZONE
\$ORIGIN scen.test.
\$TTL 1
@        SOA   ns.scen.test. hostmaster.scen.test. 1 3600 600 86400 1
@        NS    ns.scen.test.
ns       A     $NET.1
www      A     $2
files    A     $2
tls      A     $2
_acme-challenge.www TXT "$3"
$4
$5
$6
ZONE
}

write_nginx() { # FILE
    {
        nginx_preamble 256
        cat <<CONF
    server {
        listen $VICTIM:$HTTP_PORT;
        root victim;
        # the owner moved the challenge files to another name
        location = /.well-known/acme-challenge/$REDIR_TOKEN { return 302 http://files.scen.test/ka/$REDIR_TOKEN; }
    }
    server {
        listen $ATTACKER:$HTTP_PORT;
        root attacker;
    }
}
CONF
    } >"$1"
}

cert() { # NAME KEYAUTH: self-signed acme-tls/1 certificate for tls.scen.test
    local name=$1 ka=$2
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/tls/$name.key" 2>/dev/null || return 1
    printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=DNS:tls.scen.test\n1.3.6.1.5.5.7.1.31=critical,DER:04:20:%s\n' \
        "$(hexcolon_sha256 "$ka")" >"$dir/tls/$name.cnf"
    openssl req -x509 -new -key "$dir/tls/$name.key" -subj /CN=tls.scen.test -days 7 -sha256 \
        -config "$dir/tls/$name.cnf" -extensions ext -out "$dir/tls/$name.pem" 2>/dev/null
}

stop_all() {
    tls_server_stop "$dir" alpn-victim
    tls_server_stop "$dir" alpn-attacker
    tls_server_stop "$dir" blackhole
    nginx_stop "$dir/www"
    unbound_stop "$dir/broken"
    unbound_stop "$dir/validating"
    knot_stop "$dir/sec"
    knot_stop "$dir/legit"
    knot_stop "$dir/evil"
}

die() { echo "lab.sh: $*" >&2; stop_all; exit 1; }

case "$cmd" in
start)
    mkdir -p "$dir/zones" "$dir/tls" "$dir/www/victim" "$dir/www/attacker" || exit 1
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"
    zone "$dir/zones/legit.zone" $VICTIM "$(b64url_sha256 "$OWNER_KA")" \
        'caa-permit CAA 0 issue "ca.example"' 'caa-forbid CAA 0 issue "other-ca.example"' \
        'caa-methods CAA 0 issue "ca.example; validationmethods=dns-01"'
    zone "$dir/zones/evil.zone" $ATTACKER "$(b64url_sha256 "$EVIL_KA")" \
        'caa-permit CAA 0 issue "evil-ca.example"' 'caa-forbid CAA 0 issue "ca.example"' \
        'caa-methods CAA 0 issue "ca.example; validationmethods=dns-01"'
    knot_start "$dir/legit" $NET.1 $DNS_PORT "$dir/zones/legit.zone" || die "knot (legit) did not start"
    knot_start "$dir/evil" $NET.2 $DNS_PORT "$dir/zones/evil.zone" || die "knot (evil) did not start"

    # broken: a validating resolver that expects scen.test to be signed
    echo "scen.test. DNSKEY 257 3 13 $(head -c 64 /dev/urandom | base64 -w0)" >"$dir/broken.anchor"
    unbound_start "$dir/broken" $NET.3 $DNS_PORT "$dir/broken.anchor" scen.test=$NET.1@$DNS_PORT ||
        die "unbound (broken) did not start"

    # blackhole: a UDP socket that reads nothing
    mkdir -p "$dir/bh"
    python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
open(sys.argv[3], "w").write("ready\n")
time.sleep(3600)
' $NET.4 $DNS_PORT "$dir/blackhole.ready" </dev/null >"$dir/blackhole.log" 2>&1 &
    echo $! >"$dir/blackhole.pid"
    for i in $(seq 1 50); do [ -s "$dir/blackhole.ready" ] && break; sleep 0.1; done
    [ -s "$dir/blackhole.ready" ] || die "blackhole resolver did not start"

    # DNSSEC: signed zones behind a validating resolver
    signed_knot_start "$dir/sec" $NET.5 $SEC_PORT "$here/dnssec/sec.test.zone" "$here/dnssec/bogus.sec.test.zone" ||
        die "signing knot did not start"
    grep '^sec\.test\. ' "$dir/sec/anchors" >"$dir/validating.anchor"
    [ -s "$dir/validating.anchor" ] || die "no trust anchor for sec.test"
    unbound_start "$dir/validating" $NET.6 $DNS_PORT "$dir/validating.anchor" \
        sec.test=$NET.5@$SEC_PORT bogus.sec.test=$NET.5@$SEC_PORT scen.test=$NET.1@$DNS_PORT ||
        die "unbound (validating) did not start"

    # web servers
    mkdir -p "$dir/www/victim/.well-known/acme-challenge" "$dir/www/victim/.well-known/pki-validation" \
        "$dir/www/victim/ka" "$dir/www/attacker/.well-known/acme-challenge" "$dir/www/attacker/.well-known/pki-validation"
    printf '%s' "$OWNER_KA" >"$dir/www/victim/.well-known/acme-challenge/$OWNER_TOKEN"
    printf '%s' "$REDIR_KA" >"$dir/www/victim/ka/$REDIR_TOKEN"
    printf '%s\n' "$OWNER_WEB_VALUE" >"$dir/www/victim/.well-known/pki-validation/mpic.txt"
    printf '%s' "$EVIL_KA" >"$dir/www/attacker/.well-known/acme-challenge/$EVIL_TOKEN"
    printf '%s\n' "$EVIL_WEB_VALUE" >"$dir/www/attacker/.well-known/pki-validation/mpic.txt"
    write_nginx "$dir/www/nginx.conf"
    chmod -R a+rX "$dir/www"
    nginx_start "$dir/www" "$dir/www/nginx.conf" "http://$VICTIM:$HTTP_PORT/" || die "nginx did not start"

    cert owner "$OWNER_KA" || die "owner certificate"
    cert evil "$EVIL_KA" || die "attacker certificate"
    tls_server_start "$dir" alpn-victim $VICTIM $TLS_PORT "$dir/tls/owner.pem" "$dir/tls/owner.key" \
        -alpn acme-tls/1 || die "s_server (victim) did not start"
    tls_server_start "$dir" alpn-attacker $ATTACKER $TLS_PORT "$dir/tls/evil.pem" "$dir/tls/evil.key" \
        -alpn acme-tls/1 || die "s_server (attacker) did not start"

    cat >"$dir/lab.env" <<ENV
export MPIC_LAB_DIR=$dir
export MPIC_LAB_DNS_LEGIT=$NET.1:$DNS_PORT
export MPIC_LAB_DNS_EVIL=$NET.2:$DNS_PORT
export MPIC_LAB_DNS_BROKEN=$NET.3:$DNS_PORT
export MPIC_LAB_DNS_BLACKHOLE=$NET.4:$DNS_PORT
export MPIC_LAB_DNS_SIGNER=$NET.5:$SEC_PORT
export MPIC_LAB_DNS_VALIDATING=$NET.6:$DNS_PORT
export MPIC_LAB_VICTIM=$VICTIM
export MPIC_LAB_ATTACKER=$ATTACKER
export MPIC_LAB_HTTP_PORT=$HTTP_PORT
export MPIC_LAB_TLS_PORT=$TLS_PORT
export MPIC_LAB_OWNER_TOKEN=$OWNER_TOKEN
export MPIC_LAB_OWNER_KA=$OWNER_KA
export MPIC_LAB_EVIL_TOKEN=$EVIL_TOKEN
export MPIC_LAB_EVIL_KA=$EVIL_KA
export MPIC_LAB_REDIR_TOKEN=$REDIR_TOKEN
export MPIC_LAB_REDIR_KA=$REDIR_KA
export MPIC_LAB_OWNER_WEB_VALUE=$OWNER_WEB_VALUE
export MPIC_LAB_EVIL_WEB_VALUE=$EVIL_WEB_VALUE
ENV
    ;;
stop)
    [ -d "$dir" ] || exit 0
    stop_all
    ;;
*) echo "usage: lab.sh start|stop DIR" >&2; exit 2 ;;
esac
