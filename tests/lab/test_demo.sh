#!/usr/bin/env bash
# test_demo.sh MPIC: the README's main job. `mpic demo` starts its own lab,
# must report the outvoted hijack as valid and the attacker's request as
# refused (exit 0 only then), and must leave no knotd behind.
set -u
mpic=${1:?usage: test_demo.sh MPIC_BINARY}
dir=$(mktemp -d)
trap 'bash "$(dirname "$0")/demo.sh" stop "$dir/lab" >/dev/null 2>&1; rm -rf "$dir"' EXIT
out=$(MPIC_DEMO_DIR="$dir/lab" timeout 60 "$mpic" demo 2>&1)
status=$?
echo "$out"
fail=0
check() { if printf '%s\n' "$out" | grep -qE "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
[ "$status" -eq 0 ] && echo "ok   demo_exits_0" || { echo "FAIL demo_exits_0 (status $status)"; fail=1; }
check one_hijack_outvoted_is_valid '^VALID: dcv acme-dns-01 for shop.test'
check attacker_refused '^NOT VALID: dcv acme-dns-01 for shop.test'
check hijacked_perspective_shown_failing '^fra +RIPE .* fail '
check audit_written 'Audit log of both validations'
lines=$(wc -l <"$dir/lab/audit.jsonl" 2>/dev/null || echo 0)
[ "$lines" -eq 2 ] && echo "ok   two_audit_lines" || { echo "FAIL two_audit_lines ($lines)"; fail=1; }
for pidfile in "$dir"/lab/*/knotd.pid; do
    [ -e "$pidfile" ] && { echo "FAIL lab_stopped ($pidfile left)"; fail=1; }
done
[ $fail -eq 0 ] && echo "ok   lab_stopped"
exit $fail
