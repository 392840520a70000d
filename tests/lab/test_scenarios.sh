#!/usr/bin/env bash
# test_scenarios.sh MPIC_BINARY: hijack scenarios, DNSSEC and the validate
# CLI against the full loopback lab (tests/lab/lab.sh: knot owner/attacker
# views, a Bogus-zone unbound, a blackhole resolver, a signing knot behind a
# validating unbound, victim and attacker nginx and openssl s_server).
# Runs `MPIC test tests/lua/scenarios`; every server is stopped by PID.
set -u
mpic=${1:?usage: test_scenarios.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && cd .. && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
work=$(mktemp -d /tmp/mpic-lab-scenarios.XXXXXX)
chmod 755 "$work" # nginx workers (nobody) read the web roots inside

cleanup() {
    bash "$here/lab.sh" stop "$work/lab"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$here/lab.sh" start "$work/lab" || { echo "test_scenarios.sh: the lab did not start" >&2; exit 1; }
. "$work/lab/lab.env"
export MPIC_LAB_MPIC=$mpic

cd "$root" || exit 1
"$mpic" test tests/lua/scenarios
