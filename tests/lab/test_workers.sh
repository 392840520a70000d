#!/usr/bin/env bash
# test_workers.sh MPIC: `mpic serve --workers 2` and `mpic agent --workers 2`
# (lua/mpic/service/workers.lua) on loopback (127.0.48.0/24):
#   DNS stub    127.0.48.1:16401  answers REFUSED (validations answer "not valid" at once)
#   mpic serve  127.0.48.10:16410 --workers 2, audit fsync on
#   mpic agent  127.0.48.11:16411 --workers 2, mutual TLS
# Checks: two workers answer on the one port (both write audit lines), one
# scrape of /metrics gives the totals, the audit files verify, SIGHUP reaches
# every worker, a worker killed with SIGKILL under load is started again
# while validations keep answering (each within 3 tries) and the totals do
# not fall, SIGTERM drains every worker and the master exits 0 (runtime
# directory removed), a worker whose start is refused stops the service with
# status 2, --workers out of range is a usage error, --workers 1 is one
# process. Every process is stopped by its PID.
set -u
mpic=${1:?usage: test_workers.sh MPIC}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proc.sh"
root=$(cd "$here/../.." && pwd)
command -v python3 >/dev/null || { echo "test_workers.sh: python3 is required" >&2; exit 77; }
command -v curl >/dev/null || { echo "test_workers.sh: curl is required" >&2; exit 77; }

work=$(mktemp -d /tmp/mpic-workers-lab.XXXXXX)
pids=()
cleanup() {
    proc_stop_pids "${pids[@]}"
    if [ -n "${MPIC_LAB_KEEP:-}" ]; then echo "test_workers.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
failures=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1" >&2; failures=$((failures + 1)); }
check() { if eval "$2"; then ok "$1"; else fail "$1 ($2)"; fi; }

# children PID: the worker processes of a master
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
nchildren() { local c; c=$(children "$1"); set -- $c; echo $#; }
# stopped PID SECONDS: 0 when PID exited within SECONDS
stopped() {
    for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

S=http://127.0.48.10:16410
BODY='{"check_type":"dcv","domain_or_ip_target":"w.example","dcv_check_parameters":{"validation_method":"acme-dns-01","key_authorization_hash":"ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"}}'
# validate: one POST /mpic on a new connection, up to 3 tries; prints the status
validate() {
    local code
    for _ in 1 2 3; do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "$BODY" "$S/mpic")
        [ "$code" = 200 ] && break
        sleep 0.2
    done
    echo "$code"
}
# metric NAME_AND_LABELS: its value in one scrape (0 when absent)
metric() {
    curl -s -m 5 "$S/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { print $2; f = 1 } END { if (!f) print 0 }'
}
VALID='mpic_validations_total{check_type="dcv",method="acme-dns-01",verdict="invalid"}'
# totals NAME N: the metric reaches N within 2 s (snapshots are written within 50 ms)
totals() {
    for _ in $(seq 1 20); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
    echo "  $1 = $(metric "$1"), expected $2" >&2
    return 1
}

bash "$here/service/mkcerts.sh" "$work/certs" "agent:IP:127.0.48.11" "client:DNS:client.test" >/dev/null ||
    { echo "test_workers.sh: certificates" >&2; exit 1; }
C=$work/certs
cat >"$work/lab.yaml" <<YAML
issuer: {caa_domains: [ca.example], account_uri_prefixes: ["https://ca.example/acme/acct/"]}
policy: $root/policies/br.lua
selection_secret: workers-lab
defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 4000, dns_timeout_ms: 1000, dns_tries: 1}
network: {allow_reserved_ips: true}
audit: {path: $work/audit.jsonl, fsync: true}
perspectives:
YAML
for p in pdx:ARIN:45.52:-122.68 fra:RIPE:50.11:8.68 sto:RIPE:59.33:18.07 sgp:APNIC:1.35:103.82 \
    syd:APNIC:-33.87:151.21 gru:LACNIC:-23.55:-46.63; do
    IFS=: read -r id rir lat lon <<<"$p"
    echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"127.0.48.1:16401\"]}"
done >>"$work/lab.yaml"

start dns python3 "$here/frontend/dnsstub.py" 127.0.48.1 16401
start serve "$mpic" serve --config "$work/lab.yaml" --listen 127.0.48.10:16410 --workers 2 --health-interval 1
start agent "$mpic" agent --config "$work/lab.yaml" --listen 127.0.48.11:16411 --perspective pdx --workers 2 \
    --tls-cert "$C/agent.pem" --tls-key "$C/agent.key" --client-ca "$C/ca.pem" --health-interval 1
wait_port 127.0.48.10 16410 && wait_port 127.0.48.11 16411 || { cat "$work"/*.log; exit 1; }
SP=$(cat "$work/serve.pid")
AP=$(cat "$work/agent.pid")
for _ in $(seq 1 50); do
    [ "$(grep -c 'listening on' "$work/serve.log")" -ge 2 ] && [ "$(grep -c 'listening on' "$work/agent.log")" -ge 2 ] && break
    sleep 0.1
done

# two workers behind each master, every one answering
check workers_two_per_master '[ "$(nchildren "$SP")" = 2 ] && [ "$(nchildren "$AP")" = 2 ]'
codes=""
for _ in $(seq 1 40); do codes="$codes $(validate)"; done
check workers_every_validation_answered '[ "$(echo $codes | tr " " "\n" | grep -vc "^200$")" = 0 ]'
l0=$(wc -l <"$work/audit.jsonl" 2>/dev/null || echo 0)
l1=$(wc -l <"$work/audit.jsonl.w1" 2>/dev/null || echo 0)
echo "  audit lines: worker 0 $l0, worker 1 $l1"
check workers_both_answer_each_its_own_audit_file '[ "$l0" -gt 0 ] && [ "$l1" -gt 0 ] && [ $((l0 + l1)) = 40 ]'
check workers_metrics_one_scrape_gives_the_totals \
    'totals "$VALID" 40 && totals "mpic_http_requests_total{path=\"/mpic\",status=\"200\"}" 40'
check workers_audit_files_verify \
    '"$mpic" audit verify "$work/audit.jsonl" "$work/audit.jsonl.w1" --open >"$work/verify1.out" 2>&1'
check workers_agent_health_answers_on_each_connection \
    '[ "$(for i in 1 2 3 4; do curl -s -m 5 --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key" \
        -o /dev/null -w "%{http_code} " https://127.0.48.11:16411/configz; done)" = "200 200 200 200 " ]'

# SIGHUP reaches every worker
kill -HUP "$SP"
check workers_sighup_reloads_every_worker 'totals "mpic_config_reloads_total{result=\"ok\"}" 2'
check workers_sighup_logged_by_each '[ "$(grep -c "SIGHUP: reloaded" "$work/serve.log")" = 2 ]'

# a worker killed under load is started again; validations keep answering
before=$(children "$SP")
victim=${before%% *}
( for _ in $(seq 1 30); do validate; done >"$work/during.codes" ) &
loadpid=$!
sleep 0.3
kill -9 "$victim"
wait "$loadpid"
check workers_validations_answer_while_one_is_killed '[ "$(grep -vc "^200$" "$work/during.codes")" = 0 ]'
# the victim stays listed (a zombie) until the master reaps it: wait for both
restarted() { after=$(children "$SP"); [ "$(nchildren "$SP")" = 2 ] && ! echo " $after " | grep -q " $victim "; }
for _ in $(seq 1 50); do restarted && break; sleep 0.1; done
check workers_killed_worker_restarted restarted
check workers_restart_counted 'grep -q "was killed by SIGKILL" "$work/serve.log" && totals "mpic_worker_restarts_total{worker=\"0\"}" 1 ||
    totals "mpic_worker_restarts_total{worker=\"1\"}" 1'
# the successor takes up its predecessor's counts: 40 + 30 answered (less what a kill -9 cut short)
n=$(metric "$VALID")
echo "  validations counted after the restart: $n"
check workers_totals_do_not_fall '[ "$n" -ge 60 ] && [ "$n" -le 70 ]'

# SIGTERM drains every worker; the master exits 0 and removes its runtime directory
rundir=$(sed -n 's/.*runtime directory \(.*\)$/\1/p' "$work/serve.log" | head -1)
kill -TERM "$SP"
if stopped "$SP" 20; then wait "$SP"; rc=$?; else rc=timeout; fi
check workers_sigterm_master_exits_0 '[ "$rc" = 0 ]'
check workers_sigterm_every_worker_drained '[ "$(grep -c "mpic serve: stopped" "$work/serve.log")" = 2 ]'
check workers_runtime_directory_removed '[ -n "$rundir" ] && [ ! -e "$rundir" ]'
check workers_audit_files_verify_after_restart_and_stop \
    '"$mpic" audit verify "$work/audit.jsonl" "$work/audit.jsonl.w1" --open >"$work/verify2.out" 2>&1'
kill -TERM "$AP"
if stopped "$AP" 20; then wait "$AP"; rc=$?; else rc=timeout; fi
check workers_agent_sigterm_exits_0 '[ "$rc" = 0 ] && [ "$(grep -c "mpic agent: stopped" "$work/agent.log")" = 2 ]'

# a refused start (missing TLS files) stops the service with status 2
timeout 30 "$mpic" serve --config "$work/lab.yaml" --listen 127.0.48.12:16412 --workers 2 \
    --tls-cert "$work/missing.pem" --tls-key "$work/missing.key" >"$work/refused.log" 2>&1
rc=$?
check workers_refused_start_exits_2 '[ "$rc" = 2 ] && grep -q "its start was refused" "$work/refused.log"'
# usage errors and one process
"$mpic" serve --config "$work/lab.yaml" --listen 127.0.48.12:16412 --workers 0 >"$work/usage.log" 2>&1
rc=$?
check workers_zero_is_a_usage_error '[ "$rc" = 2 ] && grep -q "workers must be a whole number from 1 to 64" "$work/usage.log"'
"$mpic" agent --config "$work/lab.yaml" --listen 127.0.48.12:16412 --perspective pdx --workers 65 >"$work/usage2.log" 2>&1
rc=$?
check workers_65_is_a_usage_error '[ "$rc" = 2 ] && grep -q "not 65" "$work/usage2.log"'
"$mpic" serve --config "$work/lab.yaml" --listen 127.0.48.12:16412 --listen-fd 3 >"$work/usage3.log" 2>&1
rc=$?
check workers_hidden_options_only_together '[ "$rc" = 2 ] && grep -q "set by the master" "$work/usage3.log"'
start one "$mpic" serve --config "$work/lab.yaml" --listen 127.0.48.12:16412 --workers 1
wait_port 127.0.48.12 16412
OP=$(cat "$work/one.pid")
check workers_one_is_one_process '[ "$(nchildren "$OP")" = 0 ] && ! grep -q "workers (pids" "$work/one.log"'
kill -TERM "$OP"
stopped "$OP" 20

if [ "$failures" -ne 0 ]; then
    for n in serve agent; do echo "--- $n log (tail)"; tail -n 30 "$work/$n.log"; done
    cat "$work"/verify*.out 2>/dev/null | tail -n 5
    exit 1
fi
echo "test_workers.sh: all passed"
