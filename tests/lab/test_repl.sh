#!/usr/bin/env bash
# test_repl.sh MPIC_BINARY: drives `mpic repl` in a pseudo-terminal
# (tests/repl/repl_pty.py): completion, multi-line input, Ctrl-C, commands.
# No servers: the perspectives' canary probes (:perspectives) fail at once
# (their resolvers are 127.0.0.1:9, where nothing listens).
set -u
mpic=${1:?usage: test_repl.sh MPIC_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v python3 >/dev/null || { echo "python3 is needed for the pty driver" >&2; exit 1; }
timeout 120 python3 "$here/../repl/repl_pty.py" "$mpic" "$work"
