#!/usr/bin/env bash
# test_openmpic.sh MPIC_BINARY: replays Open MPIC's integration requests
# (tests/lua/openmpic/requests/*.json) against its integration domain served
# on loopback by tests/lab/openmpic.sh; runs `MPIC test tests/lua/openmpic`
# and stops knot and nginx by PID.
set -u
mpic=${1:?usage: test_openmpic.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/mpic-lab-openmpic.XXXXXX)
chmod 755 "$work" # nginx workers (nobody) read the web root inside

cleanup() {
    bash "$here/openmpic.sh" stop "$work/lab"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$here/openmpic.sh" start "$work/lab" || { echo "test_openmpic.sh: the lab did not start" >&2; exit 1; }
. "$work/lab/openmpic.env"

cd "$root" || exit 1
"$mpic" test tests/lua/openmpic
