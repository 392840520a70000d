#!/usr/bin/env bash
# test_durability.sh MPIC: kill -9 of the coordinator under load (audit fsync
# on), as one process and as two workers (the master and both workers killed
# at once): every verdict a client received is in the audit logs, no line is
# torn.
here=$(cd "$(dirname "$0")" && pwd)
MPIC_SVC_FSYNC=true MPIC_SVC_WORKERS=1 bash "$here/test_service.sh" "${1:?usage: test_durability.sh MPIC}" --kill9 ||
    exit 1
echo "--- the same with the coordinator as two workers"
MPIC_SVC_FSYNC=true MPIC_SVC_WORKERS=2 exec bash "$here/test_service.sh" "${1:?usage: test_durability.sh MPIC}" --kill9
