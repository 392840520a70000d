#!/usr/bin/env bash
# test_evidence.sh MPIC_BINARY: signed evidence through `mpic serve` with
# signing agents (docs/EVIDENCE.md).
# Starts on loopback (127.0.45.0/24, ports 16100-16199):
#   knot  127.0.45.1:16100   ev.test (tests/lab/evidence/ev.test.zone)
#   agents (mpic agent, mutual TLS, each with its Ed25519 signing key)
#         pdx fra sto sgp syd gru on 127.0.45.11-16:16111-16116, and jnb on
#         127.0.45.17:16117 signing with a key the coordinator does not know
#   the coordinator (mpic serve --workers 1) on 127.0.45.10:16110: a local
#         primary (loc) and the seven agents, their public keys, its own
#         checkpoint key, the audit log with fsync
# then posts validations, stops the coordinator with SIGTERM and runs
# tests/lab/evidence/check.lua on its audit log: verify, every kind of edit
# caught and named, the rogue agent outvoted, replay, the seal after every line;
# then the in-process suite tests/lua/evidence.
# Keys and certificates are made fresh at every run; everything is stopped by PID.
set -u
mpic=${1:?usage: test_evidence.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
. "$here/knot.sh"

NET=127.0.45
work=$(mktemp -d /tmp/mpic-evidence-lab.XXXXXX)
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    knot_stop "$work/knot"
    grep -h -A12 "ERROR: .*Sanitizer" "$work"/*.log >&2 2>/dev/null
    if [ -n "${MPIC_LAB_KEEP:-}" ]; then echo "test_evidence.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "test_evidence.sh: $*" >&2; exit 1; }



AGENTS="pdx:ARIN:45.52:-122.68:11 fra:RIPE:50.11:8.68:12 sto:RIPE:59.33:18.07:13 sgp:APNIC:1.35:103.82:14 syd:APNIC:-33.87:151.21:15 gru:LACNIC:-23.55:-46.63:16 jnb:AFRINIC:-26.2:28.04:17"

certspecs=(coordinator:DNS:coordinator.test)
for a in $AGENTS; do
    IFS=: read -r id _ _ _ n <<<"$a"
    certspecs+=("agent-$id:IP:$NET.$n")
done
bash "$here/service/mkcerts.sh" "$work/certs" "${certspecs[@]}" >/dev/null || die "certificates"
C=$work/certs
K=$work/keys
mkdir -p "$K"
newkey() { # newkey NAME: K/NAME.pem and its public half K/NAME.pub
    openssl genpkey -algorithm ed25519 -out "$K/$1.pem" 2>/dev/null &&
        openssl pkey -in "$K/$1.pem" -pubout -out "$K/$1.pub" 2>/dev/null
}
for a in $AGENTS; do newkey "${a%%:*}" || die "key ${a%%:*}"; done
newkey rogue || die "rogue key"
newkey coordinator || die "coordinator key"

knot_start "$work/knot" "$NET.1" 16100 "$here/evidence/ev.test.zone" || die "knot"

# The agents' configuration: every perspective local, asking knot.
{
    echo "issuer: {caa_domains: [ca.example]}"
    echo "policy: $root/policies/br.lua"
    echo "defaults: {perspective_count: 7, max_attempts: 1, timeout_ms: 2500, dns_timeout_ms: 1000, dns_tries: 2}"
    echo "network: {allow_reserved_ips: true}"
    echo "audit: {path: $work/agents-audit.jsonl, fsync: false}"
    echo "perspectives:"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon _ <<<"$a"
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$NET.1:16100\"]}"
    done
} >"$work/agents.yaml"

# The coordinator: a local primary and the seven agents with their public
# keys (jnb's is its real key: the agent signs with another one).
# the BR policy, waiting for every check (so that jnb's always answers: its
# failure is recorded, not cancelled once the verdict is certain)
sed 's/^  wait_for_all = false,/  wait_for_all = true,/' "$root/policies/br.lua" >"$work/policy.lua"
grep -q '^  wait_for_all = true,' "$work/policy.lua" || die "policy: wait_for_all not set"
{
    echo "issuer: {caa_domains: [ca.example]}"
    echo "policy: $work/policy.lua"
    echo "selection_secret: evidence-lab"
    echo "defaults: {perspective_count: 7, max_attempts: 1, timeout_ms: 5000}"
    echo "network: {allow_reserved_ips: true}"
    echo "audit: {path: $work/audit.jsonl, fsync: true, signing_key: $K/coordinator.pem, checkpoint_interval_s: 3600}"
    echo "primary: loc"
    echo "perspectives:"
    echo "  - {id: loc, rir: ARIN, location: {lat: 39.04, lon: -77.49}, resolvers: [\"$NET.1:16100\"]}"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon n <<<"$a"
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, agent: {url: \"https://$NET.$n:161$n\", ca: $C/ca.pem, cert: $C/coordinator.pem, key: $C/coordinator.key, timeout_ms: 4000, public_keys: [$K/$id.pub]}}"
    done
} >"$work/coordinator.yaml"

for a in $AGENTS; do
    IFS=: read -r id _ _ _ n <<<"$a"
    key=$K/$id.pem
    [ "$id" = jnb ] && key=$K/rogue.pem
    start "agent-$id" "$mpic" agent --config "$work/agents.yaml" --listen "$NET.$n:161$n" --perspective "$id" \
        --tls-cert "$C/agent-$id.pem" --tls-key "$C/agent-$id.key" --client-ca "$C/ca.pem" \
        --signing-key "$key" --workers 1
done
start coordinator "$mpic" serve --config "$work/coordinator.yaml" --listen "$NET.10:16110" --workers 1 \
    --health-interval 1

for a in $AGENTS; do
    IFS=: read -r _ _ _ _ n <<<"$a"
    wait_port "$NET.$n" "161$n" || die "agent on $NET.$n did not start: $(cat "$work"/agent-*.log)"
done
wait_port "$NET.10" 16110 || die "the coordinator did not start: $(cat "$work/coordinator.log")"
for f in "$work"/*.pid; do
    case $f in */knotd.pid) continue ;; esac
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited: $(cat "${f%.pid}.log")"
done

# post NAME BODY: one validation; its answer in $work/answer-NAME.json
post() {
    local code
    code=$(curl -s -o "$work/answer-$1.json" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' --data "$2" "http://$NET.10:16110/mpic") || die "POST $1 failed"
    [ "$code" = 200 ] || die "POST $1: HTTP $code: $(cat "$work/answer-$1.json")"
}
HASH=ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8
dcv() { # dcv TRACE HASH
    echo "{\"check_type\":\"dcv\",\"domain_or_ip_target\":\"ev.test\",\"trace_identifier\":\"$1\",\"dcv_check_parameters\":{\"validation_method\":\"acme-dns-01\",\"key_authorization_hash\":\"$2\"}}"
}
post ev-1 "$(dcv ev-1 "$HASH")"
post ev-2 "$(dcv ev-2 "$HASH")"
post ev-3 "$(dcv ev-3 wrong-hash-for-ev-3)"
post ev-4 '{"check_type":"caa","domain_or_ip_target":"ev.test","trace_identifier":"ev-4"}'
post ev-5 "$(dcv ev-5 "$HASH")"

# SIGTERM: the coordinator drains and exits 0 (every batch of lines is already sealed)
cpid=$(cat "$work/coordinator.pid")
kill -TERM "$cpid"
for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cpid" 2>/dev/null && die "the coordinator did not exit after SIGTERM"
wait "$cpid"
rc=$?
[ "$rc" -eq 0 ] || die "the coordinator exited with $rc after SIGTERM: $(tail -20 "$work/coordinator.log")"

cd "$root" || exit 1
"$mpic" run "$here/evidence/check.lua" "$mpic" "$work"
status=$?
# the in-process suite tests/lua/evidence runs here (a lab script of the same
# name takes the place of its lua.evidence test)
"$mpic" test tests/lua/evidence || status=1
if [ "$status" -ne 0 ]; then
    echo "--- coordinator log"; tail -n 30 "$work/coordinator.log"
fi
exit "$status"
