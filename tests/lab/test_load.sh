#!/usr/bin/env bash
# test_load.sh MPIC [TOTAL]: TOTAL (default $MPIC_LOAD_TOTAL or 10000) concurrent validations
# through mpic serve and six agents, twice: every request answered, every
# answer audited, coordinator memory steady from one wave to the next.
here=$(cd "$(dirname "$0")" && pwd)
total=${2:-${MPIC_LOAD_TOTAL:-10000}}
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null
# each in-flight request holds a client socket and a coordinator socket
conc=$total
max=$(( (hard - 512) / 2 ))
if [ "$conc" -gt "$max" ]; then
    echo "test_load.sh: file descriptor limit $hard allows $max requests in flight, not $conc"
    conc=$max
fi
# a burst this large queues at the agents: give checks time instead of timing them out
export MPIC_SVC_TIMEOUT_MS=120000 MPIC_SVC_AGENT_TIMEOUT_MS=115000
MPIC_SVC_MAX_INFLIGHT=$((conc + 100)) exec bash "$here/test_service.sh" "${1:?usage: test_load.sh MPIC [TOTAL]}" \
    --load "$total" "$conc"
