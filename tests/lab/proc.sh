# proc.sh: process helpers shared by the lab scripts. Source it.
#   proc_stop PIDFILE   stop the process named in PIDFILE: SIGTERM, wait up to
#                       5 s, then SIGKILL; removes PIDFILE. Always returns 0.
#   proc_stop_pids PID...  the same for processes known by PID (SIGTERM to all,
#                       then up to 5 s each to exit before SIGKILL).
#   start NAME CMD...   run CMD in the background, output to $work/NAME.log,
#                       PID to $work/NAME.pid and appended to the array pids
#                       (the caller sets work and pids=() and stops them).
#   wait_port ADDR PORT until something accepts TCP connections (<= 5 s).

proc_stop() {
    local pidfile=$1 pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    return 0
}

proc_stop_pids() {
    local p i
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for p in "$@"; do
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    return 0
}

start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$work/$name.pid"
    pids+=("$pid")
}

wait_port() {
    local i
    for i in $(seq 1 50); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
