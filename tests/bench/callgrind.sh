#!/usr/bin/env bash
# callgrind.sh [MPIC_BINARY] [OUT_DIR] [N_LO N_HI]: instructions per local
# acme-dns-01 validation, alone (about 2 minutes; not part of the test suite).
# Starts the bench lab (lab.sh), runs load.lua's count mode (10 in flight)
# under callgrind with N_LO and N_HI validations (default 20 and 220), and
# prints the instructions per validation ((Ir(N_HI) - Ir(N_LO)) / (N_HI - N_LO),
# which takes out start-up and configuration loading). Keeps both callgrind
# files and their annotations (self and inclusive) in OUT_DIR (default: a new
# directory under /tmp). Run it under the lab lock when other lab tests may
# run: flock /tmp/mpic-lab.lock bash tests/bench/callgrind.sh ...
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MPIC=${1:-$root/build-bench/mpic}
OUT=${2:-$(mktemp -d /tmp/mpic-callgrind.XXXXXX)}
LO=${3:-20}
HI=${4:-220}
[ -x "$MPIC" ] || { echo "callgrind.sh: no mpic binary at $MPIC" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is missing" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

. "$root/tests/lab/knot.sh"
. "$root/tests/lab/nginx.sh"
. "$here/lab.sh"
bench_lab_up callgrind.sh
cd "$root" || exit 1
for n in $LO $HI; do
    timeout 900 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$n" \
        "$MPIC" run tests/bench/load.lua "$WORK/perspectives-nofsync.yaml" dns count "$n" \
        >"$OUT/run.$n.json" 2>"$OUT/valgrind.$n.log" ||
        { echo "callgrind.sh: run $n failed: $(tail -5 "$OUT/valgrind.$n.log")" >&2; exit 1; }
    grep -q '"invalid":0' "$OUT/run.$n.json" ||
        { echo "callgrind.sh: run $n had invalid validations: $(cat "$OUT/run.$n.json")" >&2; exit 1; }
    callgrind_annotate --threshold=100 "$OUT/callgrind.$n" >"$OUT/self.$n.txt" 2>/dev/null
    callgrind_annotate --threshold=100 --inclusive=yes "$OUT/callgrind.$n" >"$OUT/incl.$n.txt" 2>/dev/null
done
lo=$(awk '/^summary:/ { print $2 }' "$OUT/callgrind.$LO")
hi=$(awk '/^summary:/ { print $2 }' "$OUT/callgrind.$HI")
echo "{\"ir_lo\": $lo, \"ir_hi\": $hi, \"n_lo\": $LO, \"n_hi\": $HI, \"ir_per_validation\": $(( (hi - lo) / (HI - LO) )), \"out\": \"$OUT\"}"
