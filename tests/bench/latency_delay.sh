#!/usr/bin/env bash
# latency_delay.sh [MPIC_BINARY] [RAW_DIR]: validation latency against the
# delay of the perspective that completes the quorum. Each of the 7
# perspectives (primary + 6 remotes, quorum 4) resolves through its own
# tests/lab/dnsdelay.py relay (127.0.91.10-16) in front of the bench lab's
# knot; for every delay profile below the relays are restarted with that
# profile's delays and tests/bench/delay.lua runs BENCH_DELAY_COUNT (200)
# acme-dns-01 validations at BENCH_DELAY_RATE (20) per second.
# Writes RAW_DIR/delay.jsonl (one line per profile) and
# RAW_DIR/delay-PROFILE.txt (latency samples); report.py turns them into a
# RESULTS.md section and delay.png.
# Run alone it starts (and stops) the bench lab itself; tests/bench/run.sh
# sources it and calls bench_delay_run with its lab already running.
# Every wait is bounded; relays are stopped by PID.

# name and delays (ms) added to each perspective's DNS answers
BENCH_DELAY_PROFILES=(
    "staircase primary=0,pdx=20,fra=40,sto=60,sgp=80,syd=100,gru=400"
    "spread primary=0,pdx=10,fra=50,sto=100,sgp=150,syd=200,gru=250"
    "equal primary=50,pdx=50,fra=50,sto=50,sgp=50,syd=50,gru=50"
    "slow-primary primary=120,pdx=20,fra=40,sto=60,sgp=80,syd=100,gru=400"
)
BENCH_DELAY_PIDS=()

# bench_delay_relays_stop: every relay started by bench_delay_relays_start
bench_delay_relays_stop() {
    local p i
    for p in "${BENCH_DELAY_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BENCH_DELAY_PIDS[@]}"; do
        for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    BENCH_DELAY_PIDS=()
}

# bench_delay_addr ID -> the relay address of a perspective (its place in
# BENCH_PERSPECTIVES, from lab.sh)
bench_delay_addr() {
    local i=10 p
    for p in $BENCH_PERSPECTIVES; do
        [ "${p%%:*}" = "$1" ] && { echo "127.0.91.$i"; return 0; }
        i=$((i + 1))
    done
    return 1
}

# bench_delay_relays_start WORK DELAYS: one relay per perspective, each
# adding its delay; returns once every relay answers (bounded)
bench_delay_relays_start() {
    local work=$1 delays=$2 p id addr d here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    for p in $BENCH_PERSPECTIVES; do
        id=${p%%:*}
        d=$(echo ",$delays," | sed -n "s/.*,$id=\([0-9.]*\),.*/\1/p")
        [ -n "$d" ] || { echo "latency_delay: no delay for $id" >&2; return 1; }
        addr=$(bench_delay_addr "$id")
        python3 "$here/../lab/dnsdelay.py" "$addr" "$BENCH_PORT_DNS" "$BENCH_ADDR_DNS" "$BENCH_PORT_DNS" "$d" 0 1 \
            >>"$work/relay-$id.log" 2>&1 &
        BENCH_DELAY_PIDS+=($!)
        echo $! >"$work/relay-$id.pid"
    done
    for p in $BENCH_PERSPECTIVES; do
        addr=$(bench_delay_addr "${p%%:*}")
        for _ in $(seq 1 50); do
            kdig @"$addr" -p "$BENCH_PORT_DNS" +timeout=1 +retry=0 SOA bench.test 2>/dev/null |
                grep -q 'status: NOERROR' && continue 2
            sleep 0.1
        done
        echo "latency_delay: relay $addr does not answer" >&2
        return 1
    done
}

# bench_delay_config FILE AUDIT: the bench perspectives, each on its relay
bench_delay_config() {
    local file=$1 audit=$2 root p id rir lat lon
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    {
        echo "issuer: {caa_domains: [ca.example]}"
        echo "policy: $root/policies/br.lua"
        echo "selection_secret: bench-secret"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 5000, dns_timeout_ms: 2000, dns_tries: 2, dns_lifetime_ms: 5000}"
        echo "network: {allow_reserved_ips: true}"
        echo "audit: {path: $audit, fsync: true}"
        echo "primary: primary"
        echo "perspectives:"
        for p in $BENCH_PERSPECTIVES; do
            IFS=: read -r id rir lat lon <<<"$p"
            echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$(bench_delay_addr "$id"):$BENCH_PORT_DNS\"]}"
        done
    } >"$file"
}

# bench_delay_run MPIC WORK RAW: every profile; the bench lab must be running
bench_delay_run() {
    local mpic=$1 work=$2 raw=$3 here entry name delays line rc
    local rate=${BENCH_DELAY_RATE:-20} count=${BENCH_DELAY_COUNT:-200}
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    bench_delay_config "$work/perspectives-delay.yaml" "$work/audit-delay.jsonl"
    : >"$raw/delay.jsonl"
    for entry in "${BENCH_DELAY_PROFILES[@]}"; do
        read -r name delays <<<"$entry"
        bench_delay_relays_start "$work" "$delays" || { bench_delay_relays_stop; return 1; }
        line=$(BENCH_LATENCY_FILE="$raw/delay-$name.txt" timeout $((count / rate + 90)) \
            "$mpic" run "$here/delay.lua" "$work/perspectives-delay.yaml" "$name" "$delays" "$rate" "$count")
        rc=$?
        bench_delay_relays_stop
        [ -n "$line" ] || { echo "latency_delay: delay.lua $name printed nothing (rc $rc)" >&2; return 1; }
        echo "$line" >>"$raw/delay.jsonl"
        echo "[$(date +%H:%M:%S)] delay $name: $line" >&2
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    here=$(cd "$(dirname "$0")" && pwd)
    root=$(cd "$here/../.." && pwd)
    MPIC=${1:-$root/build-bench/mpic}
    [ -x "$MPIC" ] || { echo "latency_delay.sh: no mpic binary at $MPIC" >&2; exit 2; }
    . "$root/tests/lab/knot.sh"
    . "$root/tests/lab/nginx.sh"
    . "$here/lab.sh"
    WORK=$(mktemp -d /tmp/mpic-bench-delay.XXXXXX)
    RAW=${2:-$WORK/raw}
    mkdir -p "$RAW"
    trap 'bench_delay_relays_stop; bench_lab_stop "$WORK"; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    bench_lab_start "$WORK" || { echo "latency_delay.sh: the lab did not start" >&2; exit 1; }
    echo "{\"load_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >&2
    bench_delay_run "$MPIC" "$WORK" "$RAW" || exit 1
    echo "{\"load_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >&2
    [ -n "${2:-}" ] || cat "$RAW/delay.jsonl"
fi
