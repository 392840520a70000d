#!/usr/bin/env bash
# test_dnssec.sh MPIC_BINARY: DNSSEC against the NSEC3 lab (dnssec/nsec3_lab.sh
# on 127.0.47.0/24: knot signing n3.test with NSEC3 opt-out and ca.example,
# a validating unbound): the Insecure proofs (opt-out closest-encloser,
# names below an unsigned cut), the DNSSEC proof at the primary that serve
# and validate require in production, repeated by serve with its outcome in
# the audit log, and the shipped perspectives.yaml through check-config.
# Runs `MPIC test tests/lua/dnssec`; every server is stopped by PID.
set -u
mpic=${1:?usage: test_dnssec.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
work=$(mktemp -d /tmp/mpic-lab-dnssec.XXXXXX)

cleanup() {
    bash "$here/dnssec/nsec3_lab.sh" stop "$work/lab"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$here/dnssec/nsec3_lab.sh" start "$work/lab" || { echo "test_dnssec.sh: the lab did not start" >&2; exit 1; }
. "$work/lab/lab.env"
export MPIC_LAB_MPIC=$mpic MPIC_LAB_WORK=$work MPIC_LAB_SWAP="$here/dnssec/nsec3_lab.sh"

cd "$root" || exit 1
"$mpic" test tests/lua/dnssec
