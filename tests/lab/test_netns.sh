#!/usr/bin/env bash
# test_netns.sh MPIC_BINARY: routing-level hijacks in network namespaces
# (tests/lab/netns.sh). Needs root: otherwise prints "SKIPPED: needs root"
# and exits 77 (ctest: SKIP_RETURN_CODE 77). Runs `MPIC test
# tests/lua/netns` inside the coordinator namespace; every process, veth and
# namespace is removed on exit.
set -u
mpic=${1:?usage: test_netns.sh MPIC_BINARY}
if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: needs root (network namespaces)"
    exit 77
fi
for tool in ip knotd nginx kdig; do
    command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 77; }
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mpic=$(cd "$(dirname "$mpic")" && pwd)/$(basename "$mpic")
work=$(mktemp -d /tmp/mpic-lab-netns.XXXXXX)
chmod 755 "$work" # nginx workers (nobody) read the web roots inside

cleanup() {
    bash "$here/netns.sh" down "$work/lab"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$here/netns.sh" up "$work/lab" "$mpic" || { echo "test_netns.sh: the namespace lab did not start" >&2; exit 1; }
. "$work/lab/netns.env"

cd "$root" || exit 1
ip netns exec "$MPIC_NETNS_COORD" "$mpic" test tests/lua/netns
