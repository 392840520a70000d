# tls.sh: shell helpers to run throw-away TLS (and not-quite-TLS) servers for
# the TLS-ALPN lab. Source it, then:
#   tls_server_start DIR NAME ADDR PORT CERT KEY [extra s_server args...]
#       openssl s_server (-www, so it never reads stdin) on ADDR:PORT;
#       pidfile DIR/NAME.pid, log DIR/NAME.log; waits (<= 5 s) until the
#       port accepts. Add "-alpn acme-tls/1" yourself when it should speak it.
#   tls_http_start DIR NAME ADDR PORT      a plain HTTP server (python3)
#   tls_silent_start DIR NAME ADDR PORT [REPLY]
#       accepts connections and never speaks; with REPLY (text), sends it
#       to each client and closes (a broken, non-TLS server)
#   tls_blackhole_start DIR NAME ADDR PORT a listener whose accept queue is
#       full, so further SYNs go unanswered (connect times out)
#   tls_server_stop DIR NAME               stops any of them by its pidfile
# ADDR may be an IPv6 literal without brackets (::1).

_tls_hostport() { # ADDR PORT -> ADDR:PORT with brackets for IPv6
    case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac
}

# _tls_wait_port DIR NAME ADDR PORT: bounded wait until a TCP connect works
_tls_wait_port() {
    local dir=$1 name=$2 addr=$3 port=$4 i
    for i in $(seq 1 50); do
        if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
            echo "tls lab: $name exited; log:" >&2
            cat "$dir/$name.log" >&2
            return 1
        fi
        if timeout 1 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "tls lab: $name did not listen on $addr port $port within 5 s" >&2
    return 1
}

tls_server_start() {
    local dir=$1 name=$2 addr=$3 port=$4 cert=$5 key=$6
    shift 6
    mkdir -p "$dir" || return 1
    openssl s_server -accept "$(_tls_hostport "$addr" "$port")" -cert "$cert" -key "$key" \
        -www -quiet "$@" </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    _tls_wait_port "$dir" "$name" "$addr" "$port"
}

tls_http_start() {
    local dir=$1 name=$2 addr=$3 port=$4
    mkdir -p "$dir/$name.www" || return 1
    echo "hello" >"$dir/$name.www/index.html"
    python3 -m http.server --bind "$addr" --directory "$dir/$name.www" "$port" \
        </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    _tls_wait_port "$dir" "$name" "$addr" "$port"
}

tls_silent_start() {
    local dir=$1 name=$2 addr=$3 port=$4 reply=${5:-}
    mkdir -p "$dir" || return 1
    python3 -c '
import socket, sys, time
addr, port, reply = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(64)
held = []
deadline = time.time() + 600
while time.time() < deadline:
    s.settimeout(1)
    try:
        c, _ = s.accept()
        if reply:
            c.sendall(reply)
            c.close()
        else:
            held.append(c)  # keep it open, never send a byte
    except socket.timeout:
        pass
' "$addr" "$port" "$reply" </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    _tls_wait_port "$dir" "$name" "$addr" "$port"
}

tls_blackhole_start() {
    local dir=$1 name=$2 addr=$3 port=$4 i
    mkdir -p "$dir" || return 1
    python3 -c '
import socket, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(0)                 # never accepted: the queue fills up
fill = []
for i in range(4):
    c = socket.socket(fam)
    c.setblocking(False)
    try:
        c.connect((addr, port))
    except BlockingIOError:
        pass
    fill.append(c)
open(sys.argv[3], "w").write("ready\n")
time.sleep(600)
' "$addr" "$port" "$dir/$name.ready" </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    for i in $(seq 1 50); do
        [ -s "$dir/$name.ready" ] && return 0
        kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "tls lab: $name not ready" >&2
    cat "$dir/$name.log" >&2
    return 1
}

tls_server_stop() {
    local dir=$1 name=$2 pid i
    [ -f "$dir/$name.pid" ] || return 0
    pid=$(cat "$dir/$name.pid")
    if kill "$pid" 2>/dev/null; then
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/$name.pid"
}
