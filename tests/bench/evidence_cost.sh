#!/usr/bin/env bash
# evidence_cost.sh MPIC_BINARY [N [plain|signed|both [IN_FLIGHT]]]: tests/bench/evidence_cost.lua with real
# probes: knot on 127.0.45.1:16101 serves ev.test (tests/lab/evidence), and
# every local perspective asks it (not part of the test suite; run it under
# the lab lock: flock /tmp/mpic-lab.lock bash tests/bench/evidence_cost.sh ...).
set -u
mpic=${1:?usage: evidence_cost.sh MPIC_BINARY [N]}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/knot.sh"
work=$(mktemp -d /tmp/mpic-evidence-cost.XXXXXX)
trap 'knot_stop "$work/knot"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
knot_start "$work/knot" 127.0.45.1 16101 "$root/tests/lab/evidence/ev.test.zone" ||
    { echo "evidence_cost.sh: knot did not start" >&2; exit 1; }
cd "$root" || exit 1
"$mpic" run tests/bench/evidence_cost.lua "${2:-1000}" 127.0.45.1:16101 "${3:-both}" "${4:-1}"
