# dnssec/nsec3_lab.sh start|stop|resolver DIR [validating|plain]: the NSEC3
# lab of tests/lab/test_dnssec.sh on 127.0.47.0/24 (no root):
#   .1:16301  knot signing n3.test (NSEC3 with opt-out, dnssec/n3.test.zone),
#             bogus.n3.test, ca.example and dnssec-bogus.ca.example
#   .2:16300  unbound validating n3.test and ca.example with their KSKs as
#             trust anchors (MPIC_LAB_DNS_N3); `resolver DIR plain` swaps it
#             for an unbound on the same address that does not validate,
#             `resolver DIR validating` swaps it back
# Nothing answers at 127.0.47.9 (the unsigned and lame delegations' server).
# DIR/lab.env holds the exports; every process is stopped by its pidfile.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/knot.sh"
. "$here/unbound.sh"
. "$here/dnssec/signed.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: nsec3_lab.sh start|stop|resolver DIR [validating|plain]" >&2; exit 2; }
NET=127.0.47
STUBS="n3.test=$NET.1@16301 bogus.n3.test=$NET.1@16301 ca.example=$NET.1@16301 dnssec-bogus.ca.example=$NET.1@16301"

resolver() { # validating|plain
    unbound_stop "$dir/resolver"
    if [ "$1" = plain ]; then
        # shellcheck disable=SC2086
        unbound_start "$dir/resolver" $NET.2 16300 - $STUBS
    else
        # shellcheck disable=SC2086
        unbound_start "$dir/resolver" $NET.2 16300 "$dir/anchors" $STUBS
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir" || exit 1
    dir=$(cd "$dir" && pwd)
    SIGNED_KNOT_NSEC3=opt-out signed_knot_start "$dir/signer" $NET.1 16301 \
        "$here/dnssec/n3.test.zone" "$here/dnssec/bogus.n3.test.zone" \
        "$here/dnssec/ca.example.zone" "$here/dnssec/dnssec-bogus.ca.example.zone" ||
        { echo "nsec3_lab.sh: the signing knot did not start" >&2; exit 1; }
    grep -E '^(n3\.test|ca\.example)\. ' "$dir/signer/anchors" >"$dir/anchors"
    [ "$(wc -l <"$dir/anchors")" -ge 2 ] || { echo "nsec3_lab.sh: no trust anchors" >&2; knot_stop "$dir/signer"; exit 1; }
    resolver validating || { knot_stop "$dir/signer"; exit 1; }
    cat >"$dir/lab.env" <<ENV
export MPIC_LAB_DIR=$dir
export MPIC_LAB_DNS_N3=$NET.2:16300
export MPIC_LAB_DNS_SIGNER=$NET.1:16301
ENV
    ;;
resolver)
    resolver "${3:-validating}"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    unbound_stop "$dir/resolver"
    knot_stop "$dir/signer"
    ;;
*) echo "usage: nsec3_lab.sh start|stop|resolver DIR [validating|plain]" >&2; exit 2 ;;
esac
