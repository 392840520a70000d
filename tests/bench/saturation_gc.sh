#!/usr/bin/env bash
# saturation_gc.sh [MPIC_BINARY] [N] [ROUNDS] [MODES]: CPU time of the mpic
# process per local acme-dns-01 validation at 10 and at 256 in flight, with
# Lua's collector as shipped ("on"), stopped ("off": memory only grows, so N
# stays small), generational ("gen") or incremental with pause 400 ("p400").
# load.lua's count mode runs N validations (default 6000) against the bench
# lab's knot; each round runs every in-flight count and mode once,
# alternating (default 5 rounds; MODES default "on off"). Prints one line per
# run and the medians. About 20 s per round and mode. Run it under the lab
# lock when other lab tests may run:
#   flock /tmp/mpic-lab.lock bash tests/bench/saturation_gc.sh build-bench/mpic
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MPIC=${1:-$root/build-bench/mpic}
N=${2:-6000}
ROUNDS=${3:-5}
MODES=${4:-on off}
[ -x "$MPIC" ] || { echo "saturation_gc.sh: no mpic binary at $MPIC" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "saturation_gc.sh: /usr/bin/time is missing" >&2; exit 2; }

. "$root/tests/lab/knot.sh"
. "$root/tests/lab/nginx.sh"
. "$here/lab.sh"
bench_lab_up saturation_gc.sh
cd "$root" || exit 1

# wrap.lua SETTING: sets the collector, then runs the script in arg[1] with the rest
wrapper() {
    cat >"$WORK/gc-$1.lua" <<L
$2
local f = assert(loadfile(arg[1]))
local a = { table.unpack(arg, 2) }
arg = a
return f(table.unpack(a))
L
}
wrapper off 'collectgarbage("stop")'
wrapper gen 'collectgarbage("generational")'
wrapper p400 'collectgarbage("incremental", 400, 100)'

results=$WORK/results.txt
for r in $(seq 1 "$ROUNDS"); do
    for k in 10 256; do
        for mode in $MODES; do
            case $mode in
            on) script=(tests/bench/load.lua) ;;
            off | gen | p400) script=("$WORK/gc-$mode.lua" tests/bench/load.lua) ;;
            *) echo "saturation_gc.sh: unknown mode $mode" >&2; exit 2 ;;
            esac
            t=$({ BENCH_IN_FLIGHT=$k /usr/bin/time -f "TIME %U %S %M" timeout 300 "$MPIC" run "${script[@]}" \
                "$WORK/perspectives-nofsync.yaml" dns count "$N" >"$WORK/run.json"; } 2>&1 | grep '^TIME')
            read -r _ u s m <<<"$t"
            grep -q '"invalid":0' "$WORK/run.json" ||
                { echo "saturation_gc.sh: invalid validations: $(cat "$WORK/run.json")" >&2; exit 1; }
            us=$(awk -v u="$u" -v s="$s" -v n="$N" 'BEGIN { printf "%d", (u + s) * 1e6 / n }')
            echo "round $r in_flight $k gc $mode cpu_us_per_validation $us max_rss_kb $m" | tee -a "$results"
        done
    done
done
echo "medians (µs of CPU per validation):"
for k in 10 256; do
    for mode in $MODES; do
        awk -v k="$k" -v m="$mode" '$4 == k && $6 == m { print $8 }' "$results" | sort -n |
            awk -v k="$k" -v m="$mode" '{ v[NR] = $1 } END { printf "  in_flight %s gc %s: %d (%d runs)\n", k, m, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), NR }'
    done
done
