#!/usr/bin/env bash
# workers.sh [MPIC_BINARY] [OUT_FILE]: a targeted run of the benchmarks for
# `mpic serve --workers N` (about 2 minutes; every step bounded by `timeout`).
# Not part of the test suite. In one run, against the loopback lab of run.sh
# (tests/bench/lab.sh: knot serving bench.test):
#   1. the raw limit: dnsperf against knot, `_acme-challenge.bench.test TXT`;
#   2. `mpic run tests/bench/load.lua` acme-dns-01 at 64 and 256 in flight
#      (one process, audit fsync on);
#   3. `mpic serve --workers 1` and `--workers 2`, the same configuration,
#      POST /mpic acme-dns-01 from wrk (keep-alive) at 16, 64 and 256
#      connections, 5 s each after a 1 s warm-up; every answer must be 200;
#      with the CPU of the master and its workers (100 = one core) and the
#      UDP datagrams the kernel dropped for a full receive buffer meanwhile.
# Prints one JSON line per measurement (and writes them to OUT_FILE).
# Ratio = validations/s x 7 TXT queries / the raw queries/s.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MPIC=${1:-$root/build-bench/mpic}
OUT=${2:-/dev/null}
MPIC=$(cd "$(dirname "$MPIC")" && pwd)/$(basename "$MPIC")
[ -x "$MPIC" ] || { echo "workers.sh: no mpic binary at $MPIC" >&2; exit 2; }
for tool in dnsperf wrk knotd nginx; do
    command -v $tool >/dev/null || { echo "workers.sh: $tool is missing" >&2; exit 2; }
done
. "$root/tests/lab/knot.sh"
. "$root/tests/lab/nginx.sh"
. "$here/lab.sh"
DUR=${BENCH_DUR:-5}
ADDR=127.0.48.20
PORT=16420

WORK=$(mktemp -d /tmp/mpic-bench-workers.XXXXXX)
spid=
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && sleep 1 && kill -9 "$spid" 2>/dev/null
    bench_lab_stop "$WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "workers.sh: $*" >&2; exit 1; }
# CPU ticks (1/100 s) of a master and its workers; UDP receive-buffer drops (any socket)
ticks() {
    local p t=0
    for p in "$1" $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
udp_drops() { awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }
emit() { echo "$1"; echo "$1" >>"$OUT"; }

bench_lab_start "$WORK" || die "the lab did not start"
cd "$root" || exit 1

printf '_acme-challenge.bench.test TXT\n' >"$WORK/q.txt"
best=0
for opt in "-c 1 -q 100" "-c 1 -q 500" "-c 4 -q 400"; do
    qps=$(timeout $((DUR + 20)) dnsperf -s "$BENCH_ADDR_DNS" -p "$BENCH_PORT_DNS" -d "$WORK/q.txt" -l "$DUR" -T 1 $opt \
        2>&1 | awk '/Queries per second/ { printf "%d", $4 }')
    [ -n "$qps" ] && [ "$qps" -gt "$best" ] && best=$qps
done
[ "$best" -gt 0 ] || die "dnsperf measured nothing"
emit "{\"what\": \"raw\", \"dns_txt_qps\": $best}"

for n in 64 256; do
    line=$(timeout $((DUR + 90)) "$MPIC" run tests/bench/load.lua "$WORK/perspectives-fsync.yaml" dns saturate "$n" \
        $((DUR * 1000)))
    v=$(echo "$line" | sed -n 's/.*"validations_per_s":\([0-9.]*\).*/\1/p')
    [ -n "$v" ] || die "load.lua printed: $line"
    emit "{\"what\": \"run\", \"in_flight\": $n, \"validations_per_s\": $v, \"ratio\": $(echo "$v * 7 / $best" | bc -l | cut -c1-5)}"
done

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"check_type":"dcv","domain_or_ip_target":"bench.test","dcv_check_parameters":{"validation_method":"acme-dns-01","key_authorization_hash":"$BENCH_HASH"}}'
LUA
for w in 1 2; do
    "$MPIC" serve --config "$WORK/perspectives-fsync.yaml" --listen "$ADDR:$PORT" --workers "$w" \
        --max-inflight 4096 --max-connections-per-ip 4096 >"$WORK/serve-$w.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 100); do
        [ "$(grep -c 'listening on' "$WORK/serve-$w.log")" -ge "$w" ] && break
        sleep 0.1
    done
    first=$(curl -s -m 10 -H 'Content-Type: application/json' --data \
        "{\"check_type\":\"dcv\",\"domain_or_ip_target\":\"bench.test\",\"dcv_check_parameters\":{\"validation_method\":\"acme-dns-01\",\"key_authorization_hash\":\"$BENCH_HASH\"}}" \
        "http://$ADDR:$PORT/mpic")
    case $first in *'"is_valid":true'*) ;; *) die "serve --workers $w: not a valid answer: $first $(tail -5 "$WORK/serve-$w.log")" ;; esac
    for c in 16 64 256; do
        timeout 30 wrk -t1 -c"$c" -d1s -s "$WORK/post.lua" "http://$ADDR:$PORT/mpic" >/dev/null 2>&1
        t0=$(ticks "$spid")
        d0=$(udp_drops)
        out=$(timeout $((DUR + 30)) wrk -t2 -c"$c" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://$ADDR:$PORT/mpic" 2>&1)
        cpu=$(( $(ticks "$spid") - t0 ))
        drops=$(( $(udp_drops) - d0 ))
        rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
        bad=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
        p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
        [ -n "$rps" ] || die "wrk: $out"
        emit "{\"what\": \"serve\", \"workers\": $w, \"connections\": $c, \"validations_per_s\": $rps, \"non_2xx\": ${bad:-0}, \"p50\": \"$p50\", \"cpu_pct\": $((cpu / DUR)), \"udp_drops\": $drops, \"ratio\": $(echo "$rps * 7 / $best" | bc -l | cut -c1-5)}"
    done
    kill -TERM "$spid"
    for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    spid=
done
