#!/usr/bin/env bash
# test_soak.sh MPIC_BINARY [SECONDS]: two long-lived coordinators shared by
# good and hostile requesters (tests/lab/soak/soak.py), then real
# perspective failures. Lab on 127.0.44.0/24 (ports 16000-16099):
#   knot     .1:16053   soak.test (the owner's records, the canary name)
#   unbound  .2:16053   the perspectives' resolver: soak.test from knot,
#                       sf.soak.test delegated to .3 (nothing listens: SERVFAIL),
#                       drop.soak.test denied (queries dropped: timeout)
#   relay    .4:16053   dnsdelay.py in front of unbound for perspective gru
#                       (stopped by the test: its resolver stops answering)
#   nginx    .10:16080  http-01 and website files
#   faultweb .11 drip, .12 silent, .13 endless headers, .14 redirect loop,
#            .15 1 GiB body (:16080); .16 refuses (nothing listens)
#   s_server .20 the owner's acme-tls/1 certificate, .21 an attacker's;
#            .22 a TLS port that never answers (:16443)
#   agents   .31-.40:16031-16040 (mutual TLS), one per perspective
#   mpic serve .50:16050 with ten local perspectives, .51:16051 with the
#            ten agents (5 per validation); health probes every second
#            (canary.soak.test)
# First every case runs once through `mpic validate` (a fresh process each);
# then soak.py sends them interleaved from several clients to both servers
# for SECONDS (default 60, env MPIC_SOAK_SECONDS) and checks every verdict
# against those, no 5xx, /healthz and the health metrics green, bounded
# memory; then stops a resolver, kills an agent, stops the shared resolver,
# and checks that health, selection, 503 and recovery follow. Evidence is on:
# the agents sign every answer, the coordinators check those signatures and
# seal their audit logs, and at the end `mpic audit verify` must accept both
# logs whole (the CLI validations write logs of their own: one writer per file).
set -u
mpic=${1:?usage: test_soak.sh MPIC_BINARY [SECONDS]}
secs=${2:-${MPIC_SOAK_SECONDS:-60}}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
. "$here/knot.sh"
. "$here/unbound.sh"
. "$here/nginx.sh"
. "$here/tls.sh"

NET=127.0.44
DNS_PORT=16053
HTTP_PORT=16080
TLS_PORT=16443
work=$(mktemp -d /tmp/mpic-soak.XXXXXX)
chmod 755 "$work" # nginx workers (nobody) read the web root inside
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    for f in "$work"/agent-*.pid; do [ -f "$f" ] && proc_stop "$f"; done
    # a stopped process would never see SIGTERM
    for f in "$work"/relay.pid "$work"/unbound/unbound.pid; do
        [ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null
    done
    proc_stop "$work/relay.pid"
    tls_server_stop "$work/tls" alpn-owner
    tls_server_stop "$work/tls" alpn-evil
    tls_server_stop "$work/tls" alpn-silent
    nginx_stop "$work/www"
    unbound_stop "$work/unbound"
    knot_stop "$work/knot"
    grep -h -A12 "ERROR: .*Sanitizer" "$work"/*.log >&2 2>/dev/null
    if [ -n "${MPIC_LAB_KEEP:-}" ]; then echo "test_soak.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "test_soak.sh: $*" >&2; exit 1; }


# Challenge material (made up for the lab)
TOKEN=soakTok-LabToken_0123456789abcdefghij
KA=$TOKEN.soakThumbprint-0123456789abcdefghijklmnop
EVIL_KA=$TOKEN.evilThumbprint-0123456789abcdefghijklmnop
b64url_sha256() { printf '%s' "$1" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='; }
hexcolon_sha256() { printf '%s' "$1" | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -s ' \n' ':' | sed 's/^://; s/:$//'; }
HASH=$(b64url_sha256 "$KA")

mkdir -p "$work/zones" "$work/www/root/.well-known/acme-challenge" "$work/tls" || exit 1
cat >"$work/zones/soak.test.zone" <<ZONE
\$ORIGIN soak.test.
\$TTL 1
@        SOA   ns.soak.test. hostmaster.soak.test. 1 3600 600 86400 1
@        NS    ns.soak.test.
ns       A     $NET.1
canary   A     $NET.1
dns      A     $NET.10
_acme-challenge.dns TXT "$HASH"
dns      CAA   0 issue "ca.example"
forbid   CAA   0 issue "other.example"
forbid   A     $NET.10
web      A     $NET.10
drip     A     $NET.11
hang     A     $NET.12
headers  A     $NET.13
loop     A     $NET.14
huge     A     $NET.15
refused  A     $NET.16
alpn     A     $NET.20
badtls   A     $NET.21
tlshang  A     $NET.22
ZONE
knot_start "$work/knot" "$NET.1" "$DNS_PORT" "$work/zones/soak.test.zone" || die "knot"
UNBOUND_EXTRA=('local-zone: "drop.soak.test." deny')
unbound_start "$work/unbound" "$NET.2" "$DNS_PORT" - "soak.test=$NET.1@$DNS_PORT" "sf.soak.test=$NET.3@$DNS_PORT" \
    || die "unbound"
python3 "$here/dnsdelay.py" "$NET.4" "$DNS_PORT" "$NET.2" "$DNS_PORT" 0 >"$work/relay.log" 2>&1 &
echo $! >"$work/relay.pid"

printf '%s' "$KA" >"$work/www/root/.well-known/acme-challenge/$TOKEN"
{
    nginx_preamble 512
    echo "    server { listen $NET.10:$HTTP_PORT; root $work/www/root; }"
    echo "}"
} >"$work/www/nginx.conf"
nginx_start "$work/www" "$work/www/nginx.conf" "http://$NET.10:$HTTP_PORT/.well-known/acme-challenge/$TOKEN" \
    || die "nginx"
n=11
for mode in drip silent endless-headers redirect-loop huge-body; do
    start "faultweb-$mode" python3 "$here/faultweb.py" "$NET.$n" "$HTTP_PORT" "$mode"
    n=$((n + 1))
done
acme_cert() { # NAME HOST KEYAUTH
    openssl ecparam -name prime256v1 -genkey -noout -out "$work/tls/$1.key" 2>/dev/null || return 1
    printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=DNS:%s\n1.3.6.1.5.5.7.1.31=critical,DER:04:20:%s\n' \
        "$2" "$(hexcolon_sha256 "$3")" >"$work/tls/$1.cnf"
    openssl req -x509 -new -key "$work/tls/$1.key" -subj "/CN=$2" -days 2 -sha256 \
        -config "$work/tls/$1.cnf" -extensions ext -out "$work/tls/$1.pem" 2>/dev/null
}
acme_cert owner alpn.soak.test "$KA" && acme_cert evil badtls.soak.test "$EVIL_KA" || die "certificates"
tls_server_start "$work/tls" alpn-owner "$NET.20" "$TLS_PORT" "$work/tls/owner.pem" "$work/tls/owner.key" \
    -alpn acme-tls/1 || die "s_server (owner)"
tls_server_start "$work/tls" alpn-evil "$NET.21" "$TLS_PORT" "$work/tls/evil.pem" "$work/tls/evil.key" \
    -alpn acme-tls/1 || die "s_server (attacker)"
tls_silent_start "$work/tls" alpn-silent "$NET.22" "$TLS_PORT" || die "silent TLS port"

# Perspectives: gru's resolver is the relay the test stops.
# Ten sites: cohorts of five are disjoint, so ten make two, and a validation
# whose cohort has an unhealthy member uses the other one.
SITES="pdx:ARIN:45.52:-122.68:31 fra:RIPE:50.11:8.68:32 sto:RIPE:59.33:18.07:33 sgp:APNIC:1.35:103.82:34 syd:APNIC:-33.87:151.21:35 gru:LACNIC:-23.55:-46.63:36 jnb:AFRINIC:-26.20:28.05:37 ord:ARIN:41.88:-87.63:38 mia:ARIN:25.76:-80.19:39 nrt:APNIC:35.68:139.77:40"
C=$work/certs
specs=(coordinator:DNS:coordinator.test)
for s in $SITES; do
    IFS=: read -r id _ _ _ n <<<"$s"
    specs+=("agent-$id:IP:$NET.$n")
done
bash "$here/service/mkcerts.sh" "$C" "${specs[@]}" >/dev/null || die "agent certificates"
K=$work/keys
mkdir -p "$K" || exit 1
ed25519() { # NAME: $K/NAME.pem and its public half $K/NAME.pub
    openssl genpkey -algorithm ed25519 -out "$K/$1.pem" 2>/dev/null &&
        openssl pkey -in "$K/$1.pem" -pubout -out "$K/$1.pub" 2>/dev/null
}
ed25519 coordinator || die "coordinator key"
for s in $SITES; do
    ed25519 "agent-${s%%:*}" || die "agent key"
done
header() { # AUDIT [SIGNING_KEY]
    echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
    echo "policy: $root/policies/br.lua"
    echo "selection_secret: soak-lab"
    echo "defaults: {perspective_count: 5, max_attempts: 1, timeout_ms: 4000, dns_timeout_ms: 500, dns_tries: 2}"
    echo "network: {allow_reserved_ips: true, http_port: $HTTP_PORT, tls_port: $TLS_PORT}"
    echo "health: {interval_s: 1, timeout_ms: 1000, failures: 2, canary_dns: {name: canary.soak.test, type: A}}"
    echo "audit: {path: $1, fsync: false${2:+, signing_key: $2}}"
    echo "perspectives:"
}
local_entries() {
    local s id rir lat lon resolver
    for s in $SITES; do
        IFS=: read -r id rir lat lon _ <<<"$s"
        resolver=$NET.2
        [ "$id" = gru ] && resolver=$NET.4
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$resolver:$DNS_PORT\"]}"
    done
}
remote_entries() {
    local s id rir lat lon n
    for s in $SITES; do
        IFS=: read -r id rir lat lon n <<<"$s"
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, agent: {url: \"https://$NET.$n:160$n\", ca: $C/ca.pem, cert: $C/coordinator.pem, key: $C/coordinator.key, public_keys: [$K/agent-$id.pub]}}"
    done
}
{ header "$work/local-audit.jsonl" "$K/coordinator.pem"; local_entries; } >"$work/local.yaml"
{ header "$work/remote-audit.jsonl" "$K/coordinator.pem"; remote_entries; } >"$work/remote.yaml"
# the same for `mpic validate`, with logs of their own
{ header "$work/cli-local-audit.jsonl" "$K/coordinator.pem"; local_entries; } >"$work/local-cli.yaml"
{ header "$work/cli-remote-audit.jsonl" "$K/coordinator.pem"; remote_entries; } >"$work/remote-cli.yaml"
{ header "$work/agents-audit.jsonl"; local_entries; } >"$work/agents.yaml"

for s in $SITES; do
    IFS=: read -r id _ _ _ n <<<"$s"
    start "agent-$id" "$mpic" agent --config "$work/agents.yaml" --listen "$NET.$n:160$n" --perspective "$id" \
        --tls-cert "$C/agent-$id.pem" --tls-key "$C/agent-$id.key" --client-ca "$C/ca.pem" --workers 1 \
        --signing-key "$K/agent-$id.pem"
done
# one process each: the soak measures each service's memory by its PID
start serve-local "$mpic" serve --config "$work/local.yaml" --listen "$NET.50:16050" --workers 1
start serve-remote "$mpic" serve --config "$work/remote.yaml" --listen "$NET.51:16051" --workers 1
for hp in $NET.31:16031 $NET.32:16032 $NET.33:16033 $NET.34:16034 $NET.35:16035 $NET.36:16036 $NET.37:16037 \
          $NET.38:16038 $NET.39:16039 $NET.40:16040 $NET.50:16050 $NET.51:16051 $NET.11:$HTTP_PORT $NET.15:$HTTP_PORT; do
    wait_port "${hp%:*}" "${hp#*:}" || die "$hp did not start: $(tail -n 5 "$work"/*.log)"
done
for f in "$work"/*.pid; do
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited: $(cat "${f%.pid}.log")"
done

export SOAK_WORK=$work SOAK_MPIC=$mpic SOAK_SECONDS=$secs SOAK_HASH=$HASH SOAK_TOKEN=$TOKEN SOAK_KA=$KA
export SOAK_LOCAL=http://$NET.50:16050 SOAK_REMOTE=http://$NET.51:16051
export SOAK_LOCAL_PID SOAK_REMOTE_PID SOAK_RELAY_PID SOAK_UNBOUND_PID SOAK_AGENT_SYD_PID
SOAK_LOCAL_PID=$(cat "$work/serve-local.pid")
SOAK_REMOTE_PID=$(cat "$work/serve-remote.pid")
SOAK_RELAY_PID=$(cat "$work/relay.pid")
SOAK_UNBOUND_PID=$(cat "$work/unbound/unbound.pid")
SOAK_AGENT_SYD_PID=$(cat "$work/agent-syd.pid")
export SOAK_RESTART_SYD="$mpic agent --config $work/agents.yaml --listen $NET.35:16035 --perspective syd \
--tls-cert $C/agent-syd.pem --tls-key $C/agent-syd.key --client-ca $C/ca.pem --workers 1 \
--signing-key $K/agent-syd.pem"
timeout $((secs + 240)) python3 "$here/soak/soak.py"
status=$?
if [ $status -ne 0 ]; then
    for f in serve-local serve-remote; do echo "--- $f log (last 30 lines)"; tail -n 30 "$work/$f.log"; done
fi
exit $status
