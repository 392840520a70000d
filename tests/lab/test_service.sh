#!/usr/bin/env bash
# test_service.sh MPIC_BINARY [--bench|--agent-bench|--profile TOTAL CONCURRENCY | --load TOTAL CONCURRENCY | --kill9]:
# the service lab.
# Starts on loopback (127.0.30.0/24):
#   knot  127.0.30.1:15400  svc.test, the owner's view
#   knot  127.0.30.2:15400  svc.test, an attacker's view (perspective syd sees it)
#   agents (mpic agent, mutual TLS) pdx fra sto sgp syd gru on 127.0.30.11-16:15411-15416,
#         mex on 127.0.30.19:15419 (killed by a test), and a "liar": the fra
#         perspective on 127.0.30.17:15417, configured at the coordinator as jnb
#   silent servers: 127.0.30.18:15418 (TLS, never answers: a hung agent),
#         127.0.30.50:15450 (HTTP, never answers: a stalled web site)
#   the coordinator (mpic serve) on 127.0.30.10:15410 with a bearer token
# then runs `MPIC test tests/lua/service` and stops everything by PID.
# Certificates come from tests/lab/service/mkcerts.sh (fresh each run).
# With --bench it runs tests/lab/service/bench.lua instead (validations/s);
# with --load, tests/lab/service/load.lua (every request answered and
# audited, memory back to its level between waves); with --kill9,
# tests/lab/service/kill9.lua (kill -9 under load, no verdict without its
# audit line, no torn line). The coordinator runs as MPIC_SVC_WORKERS
# workers (default 1: the tests read its single audit file and metrics),
# agents as MPIC_SVC_AGENT_WORKERS (default 1).
# With --profile TOTAL CONCURRENCY, MPIC_SVC_WRAP_COORDINATOR and
# MPIC_SVC_WRAP_AGENT (command prefixes, e.g. "valgrind --tool=callgrind
# --callgrind-out-file=DIR/coordinator.%p") run the coordinator and the pdx
# agent under callgrind: a warm-up of 30 validations, the counters zeroed,
# TOTAL validations through bench.lua, the counters dumped (per validation =
# the dump / TOTAL; with MPIC_SVC_PROFILE_AGENT=1 the checks are posted to pdx
# directly by service/agent_bench.lua, as --agent-bench TOTAL CONCURRENCY does
# unprofiled). Health checks every MPIC_SVC_HEALTH_INTERVAL s (default 1).
set -u
mpic=${1:?usage: test_service.sh MPIC_BINARY [--bench TOTAL CONCURRENCY]}
mode=${2:-test}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
. "$here/knot.sh"

work=$(mktemp -d /tmp/mpic-service-lab.XXXXXX)
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    # an agent a test restarted itself
    [ -f "$work/agent-mex-restarted.pid" ] && proc_stop "$work/agent-mex-restarted.pid"
    knot_stop "$work/attacker"
    knot_stop "$work/legit"
    # reports written by sanitizer builds at exit
    grep -h -A12 "ERROR: .*Sanitizer" "$work"/*.log >&2 2>/dev/null
    if [ -n "${MPIC_LAB_KEEP:-}" ]; then echo "test_service.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "test_service.sh: $*" >&2; exit 1; }



AGENTS="pdx:ARIN:45.52:-122.68:11 fra:RIPE:50.11:8.68:12 sto:RIPE:59.33:18.07:13 sgp:APNIC:1.35:103.82:14 syd:APNIC:-33.87:151.21:15 gru:LACNIC:-23.55:-46.63:16 mex:LACNIC:19.43:-99.13:19"

certspecs=(coordinator:DNS:coordinator.test serve:IP:127.0.30.10)
for a in $AGENTS; do
    IFS=: read -r id _ _ _ n <<<"$a"
    certspecs+=("agent-$id:IP:127.0.30.$n,DNS:$id.agents.test")
done
certspecs+=("agent-liar:IP:127.0.30.17" "agent-hang:IP:127.0.30.18")
bash "$here/service/mkcerts.sh" "$work/certs" "${certspecs[@]}" || die "certificates"
C=$work/certs

knot_start "$work/legit" 127.0.30.1 15400 "$here/service/svc.test.zone" || die "knot (legit)"
knot_start "$work/attacker" 127.0.30.2 15400 "$here/service/svc.test.attacker.zone" || die "knot (attacker)"

cp "$root/policies/br.lua" "$work/policy.lua"

# The agents' configuration: every perspective local, syd hijacked.
{
    echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
    echo "policy: $root/policies/br.lua"
    echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 2500, dns_timeout_ms: 1000, dns_tries: 2}"
    echo "network: {allow_reserved_ips: true, http_port: 15450}"
    echo "audit: {path: $work/agents-audit.jsonl, fsync: false}"
    echo "perspectives:"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon _ <<<"$a"
        server=127.0.30.1
        [ "$id" = syd ] && server=127.0.30.2
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$server:15400\"]}"
    done
} >"$work/agents.yaml"

# remote_entry ID RIR LAT LON URL CERTNAME
remote_entry() {
    echo "  - {id: $1, rir: $2, location: {lat: $3, lon: $4}, agent: {url: \"$5\", ca: $C/ca.pem, cert: $C/coordinator.pem, key: $C/coordinator.key, timeout_ms: ${MPIC_SVC_AGENT_TIMEOUT_MS:-4000}}}"
}
header() { # header POLICY TIMEOUT AUDIT
    echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
    echo "policy: $1"
    echo "selection_secret: service-lab"
    echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: $2}"
    echo "network: {allow_reserved_ips: true, http_port: 15450}"
    echo "audit: {path: $3, fsync: ${MPIC_SVC_FSYNC:-false}}"
    echo "perspectives:"
}
# The coordinator: the six agents, all remote (Open MPIC's model).
{
    header "$work/policy.lua" "${MPIC_SVC_TIMEOUT_MS:-5000}" "$work/coordinator-audit.jsonl"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon n <<<"$a"
        [ "$id" = mex ] && continue
        remote_entry "$id" "$rir" "$lat" "$lon" "https://127.0.30.$n:154$n"
    done
} >"$work/coordinator.yaml"
# The same six perspectives run locally in the test process.
{
    header "$root/policies/br.lua" 5000 "$work/local-audit.jsonl"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon _ <<<"$a"
        [ "$id" = mex ] && continue
        server=127.0.30.1
        [ "$id" = syd ] && server=127.0.30.2
        echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$server:15400\"]}"
    done
} >"$work/local.yaml"
# Faulty remotes for in-process validations: a killable agent, a liar, a hung one.
{
    header "$root/policies/br.lua" 4000 "$work/faulty-audit.jsonl"
    remote_entry mex LACNIC 19.43 -99.13 "https://127.0.30.19:15419"
    remote_entry jnb AFRINIC -26.2 28.04 "https://127.0.30.17:15417"
    remote_entry hang AFRINIC -1.29 36.82 "https://127.0.30.18:15418"
    for a in $AGENTS; do
        IFS=: read -r id rir lat lon n <<<"$a"
        case $id in pdx | fra | sgp) remote_entry "$id" "$rir" "$lat" "$lon" "https://127.0.30.$n:154$n" ;; esac
    done
} >"$work/faulty.yaml"

for a in $AGENTS; do
    IFS=: read -r id _ _ _ n <<<"$a"
    wrap=""
    [ "$id" = pdx ] && wrap=${MPIC_SVC_WRAP_AGENT:-}
    start "agent-$id" $wrap "$mpic" agent --config "$work/agents.yaml" --listen "127.0.30.$n:154$n" --perspective "$id" \
        --tls-cert "$C/agent-$id.pem" --tls-key "$C/agent-$id.key" --client-ca "$C/ca.pem" \
        --max-inflight "${MPIC_SVC_MAX_INFLIGHT:-1000}" --workers "${MPIC_SVC_AGENT_WORKERS:-1}"
done
start agent-liar "$mpic" agent --config "$work/agents.yaml" --listen 127.0.30.17:15417 --perspective fra \
    --tls-cert "$C/agent-liar.pem" --tls-key "$C/agent-liar.key" --client-ca "$C/ca.pem" --workers 1
start silent-agent "$mpic" run "$here/service/silent.lua" 127.0.30.18 15418 "$C/agent-hang.pem" "$C/agent-hang.key"
start silent-web "$mpic" run "$here/service/silent.lua" 127.0.30.50 15450
export MPIC_API_TOKEN=lab-token-3f9c
# (with workers, the master's runtime directory in $work: a kill -9 leaves it behind)
start coordinator env RUNTIME_DIRECTORY="$work" ${MPIC_SVC_WRAP_COORDINATOR:-} "$mpic" serve --config "$work/coordinator.yaml" --listen 127.0.30.10:15410 \
    --tls-cert "$C/serve.pem" --tls-key "$C/serve.key" --health-interval "${MPIC_SVC_HEALTH_INTERVAL:-1}" \
    --max-inflight "${MPIC_SVC_MAX_INFLIGHT:-1000}" --workers "${MPIC_SVC_WORKERS:-1}"
unset MPIC_API_TOKEN

[ -n "${MPIC_SVC_WRAP_COORDINATOR:-}${MPIC_SVC_WRAP_AGENT:-}" ] && sleep 15 # valgrind starts slowly
for a in $AGENTS; do
    IFS=: read -r _ _ _ _ n <<<"$a"
    wait_port "127.0.30.$n" "154$n" || die "agent on 127.0.30.$n did not start: $(cat "$work"/agent-*.log)"
done
for hp in 127.0.30.17:15417 127.0.30.18:15418 127.0.30.50:15450 127.0.30.10:15410; do
    wait_port "${hp%:*}" "${hp#*:}" || die "$hp did not start: $(cat "$work"/*.log)"
done

# a port already taken by someone else would pass wait_port: every process must be ours and alive
for f in "$work"/*.pid; do
    case $f in */knotd.pid) continue ;; esac
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) exited: $(cat "${f%.pid}.log")"
done

export MPIC_SVC_WORK=$work MPIC_SVC_CERTS=$C
export MPIC_SVC_COORDINATOR=https://127.0.30.10:15410 MPIC_SVC_TOKEN=lab-token-3f9c
export MPIC_SVC_COORDINATOR_PID
MPIC_SVC_COORDINATOR_PID=$(cat "$work/coordinator.pid")
export MPIC_SVC_KILL_PID
MPIC_SVC_KILL_PID=$(cat "$work/agent-mex.pid")
export MPIC_SVC_RESTART_MEX="$mpic agent --config $work/agents.yaml --listen 127.0.30.19:15419 --perspective mex \
--tls-cert $C/agent-mex.pem --tls-key $C/agent-mex.key --client-ca $C/ca.pem --workers 1"

cd "$root" || exit 1
case "$mode" in
--bench) "$mpic" run "$here/service/bench.lua" "${3:-2000}" "${4:-50}"; exit $? ;;
--agent-bench) "$mpic" run "$here/service/agent_bench.lua" "${3:-2000}" "${4:-8}"; exit $? ;;
--profile)
    driver=$here/service/bench.lua
    [ -n "${MPIC_SVC_PROFILE_AGENT:-}" ] && driver=$here/service/agent_bench.lua
    "$mpic" run "$driver" 30 "${4:-50}" >/dev/null || exit 1
    profiled=("$(cat "$work/coordinator.pid")" "$(cat "$work/agent-pdx.pid")")
    for p in "${profiled[@]}"; do callgrind_control -z "$p" >/dev/null 2>&1; done
    "$mpic" run "$driver" "${3:-300}" "${4:-50}" || exit 1
    for p in "${profiled[@]}"; do callgrind_control -d "$p" >/dev/null 2>&1; done
    exit 0
    ;;
--load) "$mpic" run "$here/service/load.lua" "${3:-10000}" "${4:-10000}"; exit $? ;;
--kill9) "$mpic" run "$here/service/kill9.lua"; exit $? ;;
esac
"$mpic" test tests/lua/service
status=$?

# SIGTERM: the coordinator stops accepting, drains, and exits 0
# (tests/lua/service/zz_drain_test.lua has sent it already: give it time to exit)
cpid=$MPIC_SVC_COORDINATOR_PID
for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$cpid" 2>/dev/null; then
    kill -TERM "$cpid"
    for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
fi
if kill -0 "$cpid" 2>/dev/null; then
    echo "test_service.sh: the coordinator did not exit after SIGTERM" >&2
    status=1
else
    wait "$cpid"
    rc=$?
    echo "coordinator exit status after SIGTERM: $rc"
    [ "$rc" -eq 0 ] || status=1
fi
if grep -l "Sanitizer" "$work"/*.log 2>/dev/null; then
    echo "test_service.sh: sanitizer reports above" >&2
    grep -h -A12 "ERROR: .*Sanitizer" "$work"/*.log >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "--- coordinator log"; tail -n 40 "$work/coordinator.log"
fi
exit "$status"
