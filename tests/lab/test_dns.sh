#!/usr/bin/env bash
# test_dns.sh MPIC_BINARY: the DNS probe against a loopback lab.
#
# Starts, on 127.0.53.0/24 port 15353:
#   .1  knot, legitimate view of victim.test   (MPIC_LAB_DNS_GOOD)
#   .2  knot, attacker view of victim.test     (MPIC_LAB_DNS_EVIL)
#   .3  knot without zones: answers REFUSED    (MPIC_LAB_DNS_REFUSED)
#   .4  a scripted server for answers knot will not give: SERVFAIL (with and
#       without RFC 8914 EDE), truncated even over TCP, NOTIMP, malformed,
#       AD=1                                    (MPIC_LAB_DNS_FAKE)
#   .5  a UDP socket that never reads          (MPIC_LAB_DNS_BLACKHOLE)
#   .6  nothing listening (ICMP port unreachable) (MPIC_LAB_DNS_CLOSED)
# then runs `MPIC test tests/lua/dns` and stops everything by PID.
set -u
MPIC=${1:?usage: test_dns.sh MPIC_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=15353
WORK=$(mktemp -d /tmp/mpic-lab-dns.XXXXXX)
PIDS=()

. "$HERE/knot.sh"

cleanup() {
    local pid i
    knot_stop "$WORK/good"
    knot_stop "$WORK/evil"
    knot_stop "$WORK/refused"
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cat >"$WORK/fakedns.py" <<'EOF'
# Scripted DNS server (UDP and TCP) answering by the first label of the name.
import socket, struct, sys, threading

ADDR, PORT = sys.argv[1], int(sys.argv[2])

def opt_rr(ede=None):
    rdata = b""
    if ede:
        code, text = ede
        body = struct.pack("!H", code) + text
        rdata = struct.pack("!HH", 15, len(body)) + body
    return b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(rdata)) + rdata

def answer(q, tcp):
    if len(q) < 17:
        return None
    qid = q[:2]
    pos, labels = 12, []
    while pos < len(q) and q[pos] != 0:
        labels.append(q[pos + 1:pos + 1 + q[pos]])
        pos += 1 + q[pos]
    question = q[12:pos + 5]
    first = labels[0].lower() if labels else b""
    flags, rcode, an, ans, ar, add = 0x8100, 0, 0, b"", 0, b""
    if first == b"servfail":
        rcode = 2
    elif first == b"bogus":
        rcode, ar, add = 2, 1, opt_rr((6, b"signature does not verify"))
    elif first == b"expired":
        rcode, ar, add = 2, 1, opt_rr((7, b""))
    elif first == b"unreachable":
        rcode, ar, add = 2, 1, opt_rr((22, b"no reachable authority"))
    elif first == b"notimp":
        rcode = 4
    elif first == b"formerr":
        rcode, ar, add = 1, 1, opt_rr()
    elif first == b"tc":
        flags |= 0x0200
    elif first == b"garbage":
        an, ans = 3, b"\xc0\x0c\x00\x01"
    elif first == b"silent":
        return None
    elif first == b"ad":
        flags |= 0x0020
        an, ans = 1, b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 53])
    hdr = qid + struct.pack("!HHHHH", flags | rcode, 1, an, 0, ar)
    return hdr + question + ans + add

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, PORT))
    while True:
        q, peer = s.recvfrom(4096)
        r = answer(q, False)
        if r:
            s.sendto(r, peer)

def tcp_conn(c):
    try:
        while True:
            h = c.recv(2)
            if len(h) < 2:
                return
            n = struct.unpack("!H", h)[0]
            q = b""
            while len(q) < n:
                d = c.recv(n - len(q))
                if not d:
                    return
                q += d
            r = answer(q, True)
            if r:
                c.sendall(struct.pack("!H", len(r)) + r)
    finally:
        c.close()

def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, PORT))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()

threading.Thread(target=tcp, daemon=True).start()
udp()
EOF

cat >"$WORK/blackhole.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
time.sleep(3600)
EOF

fail() {
    echo "test_dns.sh: $*" >&2
    exit 1
}

knot_start "$WORK/good" 127.0.53.1 $PORT "$HERE/zones/victim.test.zone" || fail "knot (good) did not start"
knot_start "$WORK/evil" 127.0.53.2 $PORT "$HERE/zones/victim.test.evil.zone" || fail "knot (evil) did not start"
knot_start "$WORK/refused" 127.0.53.3 $PORT || fail "knot (refused) did not start"

python3 "$WORK/fakedns.py" 127.0.53.4 $PORT >"$WORK/fake.log" 2>&1 &
PIDS+=($!)
python3 "$WORK/blackhole.py" 127.0.53.5 $PORT >"$WORK/blackhole.log" 2>&1 &
PIDS+=($!)

ready=0
for i in $(seq 1 50); do
    if kdig @127.0.53.4 -p $PORT +timeout=1 +retry=0 A ad.fake.test 2>/dev/null | grep -q 'status: NOERROR'; then
        ready=1
        break
    fi
    sleep 0.1
done
[ $ready = 1 ] || fail "scripted DNS server did not answer within 5 s: $(cat "$WORK/fake.log")"
for i in $(seq 1 50); do
    ss -lun 2>/dev/null | grep -q "127.0.53.5:$PORT" && break
    sleep 0.1
done

export MPIC_LAB_DNS_GOOD=127.0.53.1:$PORT
export MPIC_LAB_DNS_EVIL=127.0.53.2:$PORT
export MPIC_LAB_DNS_REFUSED=127.0.53.3:$PORT
export MPIC_LAB_DNS_FAKE=127.0.53.4:$PORT
export MPIC_LAB_DNS_BLACKHOLE=127.0.53.5:$PORT
export MPIC_LAB_DNS_CLOSED=127.0.53.6:$PORT

cd "$ROOT" || exit 1
"$MPIC" test "$ROOT/tests/lua/dns"
rc=$?
exit $rc
