#!/usr/bin/env bash
# test_frontend.sh MPIC_BINARY: the HTTP front end under hostile clients.
# Starts on loopback (127.0.41.0/24):
#   a DNS stub        127.0.41.1:15701   answers REFUSED (health canary: reachable)
#   a silent web site 127.0.41.50:15750  accepts requests, never answers
#   mpic serve        127.0.41.10:15710  token, --max-inflight 2, 20 connections, 4 per
#                                        client address, 3 s request deadline
#   mpic agent        127.0.41.11:15711  mutual TLS, 3 s handshake/request deadline
#   mpic serve        127.0.41.12:15712  under `ulimit -n` low enough to run out of
#                                        descriptors when flooded
#   (each with --workers 1: the caps are per worker process, and the lab counts them)
# then drives tests/lab/frontend/hostile.py against them (listener and per-address caps,
# request drip past the deadline, TLS handshake drip, EMFILE flood, framing,
# /metrics token, /healthz with the in-flight limit exhausted) and stops
# everything by PID.
set -u
mpic=${1:?usage: test_frontend.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proc.sh"
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
command -v python3 >/dev/null || { echo "test_frontend.sh: python3 is required" >&2; exit 77; }

work=$(mktemp -d /tmp/mpic-frontend-lab.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    if [ -n "${MPIC_LAB_KEEP:-}" ]; then echo "test_frontend.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "test_frontend.sh: $*" >&2; exit 1; }



bash "$here/service/mkcerts.sh" "$work/certs" "agent:IP:127.0.41.11" "client:DNS:client.test" >/dev/null ||
    die "certificates"
C=$work/certs

cat >"$work/lab.yaml" <<YAML
issuer: {caa_domains: [ca.example], account_uri_prefixes: ["https://ca.example/acme/acct/"]}
policy: $root/policies/br.lua
selection_secret: frontend-lab
defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 8000, dns_timeout_ms: 1000, dns_tries: 1}
network: {allow_reserved_ips: true, http_port: 15750}
audit: {path: $work/audit.jsonl, fsync: false}
perspectives:
YAML
for p in pdx:ARIN:45.52:-122.68 fra:RIPE:50.11:8.68 sto:RIPE:59.33:18.07 sgp:APNIC:1.35:103.82 \
    syd:APNIC:-33.87:151.21 gru:LACNIC:-23.55:-46.63 jnb:AFRINIC:-26.2:28.04; do
    IFS=: read -r id rir lat lon <<<"$p"
    echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"127.0.41.1:15701\"]}"
done >>"$work/lab.yaml"

start dns python3 "$here/frontend/dnsstub.py" 127.0.41.1 15701
start silent-web "$mpic" run "$here/service/silent.lua" 127.0.41.50 15750
start serve "$mpic" serve --config "$work/lab.yaml" --listen 127.0.41.10:15710 --token lab-token-41 \
    --max-inflight 2 --max-connections 20 --max-connections-per-ip 4 --header-timeout 3 --health-interval 1 \
    --workers 1
start agent "$mpic" agent --config "$work/lab.yaml" --listen 127.0.41.11:15711 --perspective pdx \
    --tls-cert "$C/agent.pem" --tls-key "$C/agent.key" --client-ca "$C/ca.pem" --header-timeout 3 --health-interval 1 \
    --workers 1
# few descriptors: a flood of connections runs accept() into EMFILE
start serve-lowfd bash -c "ulimit -n ${MPIC_FRONTEND_NOFILE:-48} && exec \"\$0\" \"\$@\"" "$mpic" serve \
    --config "$work/lab.yaml" --listen 127.0.41.12:15712 --header-timeout 20 --health-interval 1 --workers 1

for hp in 127.0.41.50:15750 127.0.41.10:15710 127.0.41.11:15711 127.0.41.12:15712; do
    wait_port "${hp%:*}" "${hp#*:}" || die "$hp did not start: $(cat "$work"/*.log)"
done
for f in "$work"/*.pid; do
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited: $(cat "${f%.pid}.log")"
done

cd "$root" || exit 1
python3 "$here/frontend/hostile.py" --work "$work" --token lab-token-41 \
    --lowfd-pid "$(cat "$work/serve-lowfd.pid")" --lowfd-log "$work/serve-lowfd.log"
status=$?
for f in "$work"/serve.pid "$work"/agent.pid "$work"/serve-lowfd.pid; do
    kill -0 "$(cat "$f")" 2>/dev/null || { echo "test_frontend.sh: $(basename "$f" .pid) died" >&2; status=1; }
done
# (the tail only: a server spinning on accept() can write gigabytes)
for f in "$work"/*.log; do
    if tail -c 200000 "$f" | grep -q "ERROR: .*Sanitizer"; then
        tail -c 200000 "$f" | grep -A12 "ERROR: .*Sanitizer" >&2
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    for n in serve agent serve-lowfd; do echo "--- $n log (tail)"; tail -c 3000 "$work/$n.log"; done
fi
exit "$status"
