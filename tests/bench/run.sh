#!/usr/bin/env bash
# run.sh [MPIC_BINARY] [OUT_DIR]: the mpic benchmarks, in one command (about
# 6 minutes; every step is bounded by `timeout`). Not part of the test suite.
#
# Starts the loopback lab (tests/bench/lab.sh: knot serving bench.test, nginx
# serving the http-01 token, a blackhole resolver), then, in this run:
#   1. the raw limit of the servers: dnsperf against knot (the same names the
#      validations ask), wrk against the same http-01 URL (keep-alive, and
#      with "Connection: close" since mpic opens a fresh connection per probe);
#   1b. the probe path's ceiling: DNS queries/s and HTTP GETs/s through
#      mpic's own runtime with no orchestration (ceiling.lua), against
#      the raw rates of step 1;
#   2. validations/s at saturation for acme-dns-01, acme-http-01 and CAA,
#      a primary and 6 local perspectives, over a concurrency sweep, with the
#      audit log on (fsync on, and again with fsync off);
#   3. latency percentiles at a fixed moderate rate (an eighth of the best
#      fsync-on rate of each method); then latency against per-perspective
#      delays (tests/bench/latency_delay.sh: a delaying DNS relay per
#      perspective, several delay profiles, 200 validations each at 20/s);
#   4. resident memory per in-flight validation (10,000 in flight against the
#      blackhole resolver), and its parts (bare tasks, tasks waiting in a DNS
#      query, validations whose checks sleep), each in a fresh process;
#   5. where the CPU goes: a piece-by-piece breakdown (breakdown.lua) and
#      instructions per validation under callgrind (220 - 20 validations);
#   6. writes OUT_DIR/RESULTS.md, OUT_DIR/throughput.png, OUT_DIR/latency.png,
#      OUT_DIR/delay.png and OUT_DIR/raw/ (every measurement as JSON), via
#      report.py.
# Defaults: MPIC_BINARY=build-bench/mpic (build it with -DCMAKE_BUILD_TYPE=Release),
# OUT_DIR=tests/bench. BENCH_QUICK=1 shortens every step (for a smoke run).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MPIC=${1:-$root/build-bench/mpic}
OUT=${2:-$here}
MPIC=$(cd "$(dirname "$MPIC")" && pwd)/$(basename "$MPIC")
[ -x "$MPIC" ] || { echo "run.sh: no mpic binary at $MPIC" >&2; exit 2; }
PY=/usr/bin/python3   # Debian's python3 has python3-matplotlib
for tool in dnsperf wrk knotd nginx valgrind; do
    command -v $tool >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 2; }
done
$PY -c 'import matplotlib' 2>/dev/null || { echo "run.sh: python3-matplotlib is missing" >&2; exit 2; }

. "$root/tests/lab/knot.sh"
. "$root/tests/lab/nginx.sh"
. "$here/lab.sh"
. "$here/latency_delay.sh"

WORK=$(mktemp -d /tmp/mpic-bench.XXXXXX)
RAW=$WORK/raw
mkdir -p "$RAW" "$OUT"
cleanup() {
    bench_delay_relays_stop
    bench_lab_stop "$WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    DUR=1500; RAWDUR=2; SWEEP="1 16 64"; LATDUR=3000; MEMN=2000; CG_HI=60; DELAYN=60; CEILDUR=1500
else
    DUR=4000; RAWDUR=5; SWEEP="1 4 16 64 256"; LATDUR=10000; MEMN=10000; CG_HI=220; DELAYN=200; CEILDUR=3000
fi
CEILN="7 64 448" # probe loops in flight: one per perspective, and more
CG_LO=20

echo "{\"load_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$RAW/load_start.json"
log "starting the lab in $WORK"
bench_lab_start "$WORK" || die "the lab did not start"
cd "$root" || exit 1

# --- 1. raw limits ------------------------------------------------------------
# dnsperf: best of a few client settings (it is CPU-bound itself on 2 cores)
raw_dns() { # NAME TYPE -> prints "qps lost%"
    local best=0 bestlost=0 opt out qps lost
    printf '%s %s\n' "$1" "$2" >"$WORK/q.txt"
    for opt in "-c 1 -q 100" "-c 1 -q 500" "-c 4 -q 400"; do
        out=$(timeout $((RAWDUR + 20)) dnsperf -s "$BENCH_ADDR_DNS" -p "$BENCH_PORT_DNS" -d "$WORK/q.txt" \
            -l "$RAWDUR" -T 1 $opt 2>&1)
        qps=$(echo "$out" | awk '/Queries per second/ { printf "%d", $4 }')
        lost=$(echo "$out" | awk '/Queries lost/ { gsub(/[()%]/, "", $4); print $4 }')
        if [ -n "$qps" ] && [ "$qps" -gt "$best" ]; then best=$qps; bestlost=$lost; fi
    done
    echo "$best $bestlost"
}
raw_http() { # extra wrk args -> prints rps
    timeout $((RAWDUR + 20)) wrk -t1 -c64 -d"${RAWDUR}s" "$@" \
        "http://$BENCH_HTTP/.well-known/acme-challenge/$BENCH_TOKEN" 2>&1 |
        awk '/Requests\/sec/ { printf "%d", $2 } /Non-2xx/ { bad = 1 } END { if (bad) print " NON2XX" }'
}
log "raw: dnsperf TXT/CAA/A, wrk keep-alive/close"
read -r dns_txt dns_txt_lost <<<"$(raw_dns _acme-challenge.bench.test TXT)"
read -r dns_caa dns_caa_lost <<<"$(raw_dns bench.test CAA)"
read -r dns_a dns_a_lost <<<"$(raw_dns www.bench.test A)"
http_ka=$(raw_http)
http_close=$(raw_http -H "Connection: close")
case "$http_ka $http_close" in *NON2XX*) die "wrk saw non-2xx answers";; esac
cat >"$RAW/raw.json" <<EOF
{"dns_txt_qps": $dns_txt, "dns_txt_lost_pct": ${dns_txt_lost:-0}, "dns_caa_qps": $dns_caa,
 "dns_caa_lost_pct": ${dns_caa_lost:-0}, "dns_a_qps": $dns_a, "dns_a_lost_pct": ${dns_a_lost:-0},
 "http_keepalive_rps": $http_ka, "http_close_rps": $http_close}
EOF
log "raw: $(tr -d '\n' <"$RAW/raw.json")"

# --- 1b. the probe path's ceiling -----------------------------------------------
# the same probes through mpic's runtime alone (no request, policy, audit): what
# the one mpic loop can ask at best, whatever the orchestration costs
: >"$RAW/ceiling.jsonl"
for probe in dns http; do
    server=$BENCH_DNS
    [ $probe = http ] && server=$BENCH_HTTP
    line=$(timeout 120 "$MPIC" run tests/bench/ceiling.lua $probe "$server" "$CEILDUR" $CEILN)
    [ -n "$line" ] || die "ceiling.lua $probe printed nothing"
    echo "$line" >>"$RAW/ceiling.jsonl"
    log "ceiling $probe: $line"
done

# --- 2. saturation sweep ------------------------------------------------------
: >"$RAW/saturate.jsonl"
for fs in fsync nofsync; do
    for m in dns http caa; do
        for n in $SWEEP; do
            line=$(timeout $((DUR / 1000 + 90)) "$MPIC" run tests/bench/load.lua \
                "$WORK/perspectives-$fs.yaml" $m saturate "$n" "$DUR")
            rc=$?
            [ -n "$line" ] || die "load.lua $m saturate $n ($fs) printed nothing (rc $rc)"
            echo "$line" >>"$RAW/saturate.jsonl"
            log "saturate $fs $m $n: $line"
        done
    done
done

# --- 3. latency at a fixed moderate rate ----------------------------------------
: >"$RAW/latency.jsonl"
for m in dns http caa; do
    best=$($PY - "$RAW/saturate.jsonl" "$m" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(int(max(r["validations_per_s"] for r in rows if r["method"] == sys.argv[2] and r["fsync"])))
PY
)
    rate=$((best / 8))
    [ "$rate" -ge 1 ] || rate=1
    line=$(BENCH_LATENCY_FILE="$RAW/latency-$m.txt" timeout $((LATDUR / 1000 + 90)) "$MPIC" run \
        tests/bench/load.lua "$WORK/perspectives-fsync.yaml" $m rate "$rate" "$LATDUR")
    [ -n "$line" ] || die "load.lua $m rate $rate printed nothing"
    echo "$line" >>"$RAW/latency.jsonl"
    log "latency $m at $rate/s: $line"
done

# latency against per-perspective delays (early decision)
log "latency against per-perspective delays: ${#BENCH_DELAY_PROFILES[@]} profiles, $DELAYN validations each"
BENCH_DELAY_COUNT=$DELAYN bench_delay_run "$MPIC" "$WORK" "$RAW" || die "latency_delay failed"

# --- 4. memory per in-flight validation ----------------------------------------
log "memory: $MEMN validations in flight against the blackhole resolver"
timeout 300 "$MPIC" run tests/bench/memory.lua "$WORK/perspectives-blackhole.yaml" "$MEMN" >"$RAW/memory.json" ||
    die "memory.lua failed: $(cat "$RAW/memory.json")"
log "memory: $(cat "$RAW/memory.json")"
# its parts, each in a fresh process (report.py's "where the KB go")
for part in bare query sleeping; do
    timeout 300 "$MPIC" run tests/bench/memory.lua "$WORK/perspectives-blackhole.yaml" "$MEMN" "$part" \
        >"$RAW/memory-$part.json" || die "memory.lua $part failed: $(cat "$RAW/memory-$part.json")"
    log "memory $part: $(cat "$RAW/memory-$part.json")"
done

# --- 5. CPU: breakdown and callgrind -------------------------------------------
log "CPU breakdown"
timeout 300 "$MPIC" run tests/bench/breakdown.lua "$WORK/perspectives-nofsync.yaml" 2000 >"$RAW/breakdown.json" ||
    die "breakdown.lua failed: $(cat "$RAW/breakdown.json")"
log "callgrind: $CG_LO and $CG_HI acme-dns-01 validations"
for n in $CG_LO $CG_HI; do
    timeout 900 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.$n" \
        "$MPIC" run tests/bench/load.lua "$WORK/perspectives-nofsync.yaml" dns count "$n" \
        >"$RAW/callgrind-run.$n.json" 2>"$WORK/callgrind.$n.log" ||
        die "callgrind run ($n) failed: $(tail -5 "$WORK/callgrind.$n.log")"
done
ir_lo=$(awk '/^summary:/ { print $2 }' "$WORK/callgrind.$CG_LO")
ir_hi=$(awk '/^summary:/ { print $2 }' "$WORK/callgrind.$CG_HI")
for n in $CG_LO $CG_HI; do
    callgrind_annotate --threshold=100 "$WORK/callgrind.$n" 2>/dev/null | head -400 >"$RAW/callgrind-self.$n.txt"
    callgrind_annotate --threshold=100 --inclusive=yes "$WORK/callgrind.$n" 2>/dev/null | head -400 >"$RAW/callgrind-incl.$n.txt"
done
echo "{\"ir_lo\": $ir_lo, \"ir_hi\": $ir_hi, \"n_lo\": $CG_LO, \"n_hi\": $CG_HI}" >"$RAW/callgrind.json"
log "callgrind: $(cat "$RAW/callgrind.json")"

# --- coordinator -> agents -------------------------------------------------------
# the service lab (tests/lab/test_service.sh): mpic serve and six mpic agents
# over mutual TLS, acme-dns-01 at saturation, then the same validations with
# the six perspectives local in one process (the baseline of the ratio); the
# CPU each process spent per validation in both phases (bench.lua)
log "coordinator -> agents (service lab)"
REMOTE_TOTAL=$([ "${BENCH_QUICK:-0}" = 1 ] && echo 1500 || echo 6000)
if MPIC_SVC_BENCH_JSON="$RAW/remote.json" timeout 300 bash "$root/tests/lab/test_service.sh" "$MPIC" --bench \
    "$REMOTE_TOTAL" 64 >"$RAW/remote.txt" 2>&1 && [ -s "$RAW/remote.json" ]; then
    log "remote: $(tail -3 "$RAW/remote.txt" | tr '\n' ' ')"
else
    echo "{\"status\": \"failed: $(tail -1 "$RAW/remote.txt" | tr -d '\"\\')\"}" >"$RAW/remote.json"
fi
[ -f "$root/tests/lab/netns.sh" ] && NETNS=1 || NETNS=0

echo "{\"load_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$RAW/load_end.json"

# --- 6. report -------------------------------------------------------------------
rm -rf "$OUT/raw"
cp -r "$RAW" "$OUT/raw"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
$PY "$here/report.py" "$OUT/raw" "$OUT" "$commit" "$NETNS" || die "report.py failed"
log "wrote $OUT/RESULTS.md, $OUT/throughput.png, $OUT/latency.png, $OUT/delay.png"
