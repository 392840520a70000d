# nginx.sh: run a throw-away nginx for lab tests. Source it, then:
#   nginx_start DIR CONF [PROBE_URL]
#       foreground nginx (-p DIR -c CONF -g 'daemon off;') in the background;
#       its PID goes to DIR/nginx.master.pid, its output to DIR/nginx.out.
#       Waits (<= 5 s) until PROBE_URL answers (when given) or the pid file
#       appears.
#   nginx_stop DIR
#       SIGTERM to that PID, bounded wait, SIGKILL if it is still there.

. "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
nginx_start() {
    local dir=$1 conf=$2 probe=${3:-} pid i
    mkdir -p "$dir/tmp" || return 1
    nginx -p "$dir" -c "$conf" -g 'daemon off;' >"$dir/nginx.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/nginx.master.pid"
    for i in $(seq 1 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "nginx lab: nginx exited; output:" >&2
            cat "$dir/nginx.out" "$dir/error.log" 2>/dev/null >&2
            return 1
        fi
        if [ -n "$probe" ]; then
            curl -s -o /dev/null --max-time 1 --noproxy '*' "$probe" && return 0
        elif [ -s "$dir/nginx.pid" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "nginx lab: nginx did not answer within 5 s" >&2
    return 1
}

nginx_stop() {
    proc_stop "$1/nginx.master.pid"
}

# nginx_preamble CONNECTIONS: the lines every lab nginx.conf starts with (one
# worker, files in the prefix directory, no access log), up to and including
# the opening of the http block; the caller adds its servers and the "}".
nginx_preamble() {
    cat <<CONF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections $1; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    default_type text/plain;
CONF
}
