#!/usr/bin/env bash
# test_durability.sh MPIC: kill -9 of the coordinator under load (audit fsync
# on): every verdict a client received is in the audit log, no line is torn.
here=$(cd "$(dirname "$0")" && pwd)
MPIC_SVC_FSYNC=true exec bash "$here/test_service.sh" "${1:?usage: test_durability.sh MPIC}" --kill9
