# lab.sh: the loopback lab of the benchmarks. Source it (after
# tests/lab/knot.sh and tests/lab/nginx.sh), then:
#   bench_lab_start WORK   knot (bench.test) on $BENCH_DNS, nginx on
#                          $BENCH_HTTP, a blackhole resolver on
#                          $BENCH_BLACKHOLE; writes WORK/perspectives-*.yaml
#   bench_lab_stop WORK    stops all three by PID
#   bench_lab_up NAME      for a script that only needs the lab: a fresh WORK
#                          (/tmp/mpic-NAME-lab.*), the lab started in it and
#                          stopped and removed at exit; exits 1 when it does
#                          not start
# Exports BENCH_HASH, BENCH_TOKEN, BENCH_KA (the values the zone and the web
# root hold; load.lua sends them).
BENCH_ADDR_DNS=127.0.91.1
BENCH_ADDR_HTTP=127.0.91.2
BENCH_ADDR_BH=127.0.91.3
BENCH_PORT_DNS=15453
BENCH_PORT_HTTP=15480
BENCH_DNS=$BENCH_ADDR_DNS:$BENCH_PORT_DNS
BENCH_HTTP=$BENCH_ADDR_HTTP:$BENCH_PORT_HTTP
BENCH_BLACKHOLE=$BENCH_ADDR_BH:$BENCH_PORT_DNS
BENCH_TOKEN=LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0
BENCH_KA=$BENCH_TOKEN.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI
BENCH_HASH=$(printf '%s' "$BENCH_KA" | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=\n')
export BENCH_TOKEN BENCH_KA BENCH_HASH

# perspectives: id rir lat lon (pairwise >= 500 km, as br.lua's cohorts need)
BENCH_PERSPECTIVES="primary:ARIN:39.04:-77.49 pdx:ARIN:45.52:-122.68 fra:RIPE:50.11:8.68 sto:RIPE:59.33:18.07 sgp:APNIC:1.35:103.82 syd:APNIC:-33.87:151.21 gru:LACNIC:-23.55:-46.63"

# bench_write_config FILE RESOLVER FSYNC AUDIT [DNS_TIMEOUT_MS TRIES TIMEOUT_MS]
bench_write_config() {
    local file=$1 resolver=$2 fsync=$3 audit=$4
    local dto=${5:-2000} tries=${6:-2} vto=${7:-5000}
    local root p id rir lat lon
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    {
        echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
        echo "policy: $root/policies/br.lua"
        echo "selection_secret: bench-secret"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: $vto, dns_timeout_ms: $dto, dns_tries: $tries, dns_lifetime_ms: $((dto * tries + 1000))}"
        echo "network: {allow_reserved_ips: true, http_port: $BENCH_PORT_HTTP}"
        echo "audit: {path: $audit, fsync: $fsync}"
        echo "primary: primary"
        echo "perspectives:"
        for p in $BENCH_PERSPECTIVES; do
            IFS=: read -r id rir lat lon <<<"$p"
            echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"$resolver\"]}"
        done
    } >"$file"
}

bench_lab_start() {
    local work=$1 i
    mkdir -p "$work/knot" "$work/nginx/root/.well-known/acme-challenge" "$work/nginx/tmp" || return 1
    chmod 755 "$work" # nginx's workers (not root) must reach the web root
    cat >"$work/knot/bench.test.zone" <<ZONE
\$ORIGIN bench.test.
\$TTL 300
@               SOA   ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
@               NS    ns.bench.test.
ns              A     $BENCH_ADDR_DNS
@               CAA   0 issue "ca.example"
_acme-challenge TXT   "$BENCH_HASH"
www             A     $BENCH_ADDR_HTTP
ZONE
    knot_start "$work/knot" "$BENCH_ADDR_DNS" "$BENCH_PORT_DNS" "$work/knot/bench.test.zone" || return 1

    printf '%s' "$BENCH_KA" >"$work/nginx/root/.well-known/acme-challenge/$BENCH_TOKEN"
    {
        nginx_preamble 8192
        cat <<CONF
    keepalive_requests 1000000;
    server {
        listen $BENCH_HTTP backlog=4096;
        root root;
    }
}
CONF
    } >"$work/nginx/nginx.conf"
    chmod -R a+rX "$work/nginx"
    nginx_start "$work/nginx" "$work/nginx/nginx.conf" \
        "http://$BENCH_HTTP/.well-known/acme-challenge/$BENCH_TOKEN" || return 1
    [ "$(curl -s --noproxy '*' --max-time 2 "http://$BENCH_HTTP/.well-known/acme-challenge/$BENCH_TOKEN")" = "$BENCH_KA" ] ||
        { echo "bench lab: nginx does not serve the token" >&2; return 1; }

    cat >"$work/blackhole.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
time.sleep(3600)
PY
    python3 "$work/blackhole.py" "$BENCH_ADDR_BH" "$BENCH_PORT_DNS" >"$work/blackhole.log" 2>&1 &
    echo $! >"$work/blackhole.pid"
    for i in $(seq 1 50); do
        ss -lun 2>/dev/null | grep -q "$BENCH_BLACKHOLE" && break
        sleep 0.1
    done
    ss -lun 2>/dev/null | grep -q "$BENCH_BLACKHOLE" || return 1

    bench_write_config "$work/perspectives-fsync.yaml" "$BENCH_DNS" true "$work/audit-fsync.jsonl"
    bench_write_config "$work/perspectives-nofsync.yaml" "$BENCH_DNS" false "$work/audit-nofsync.jsonl"
    bench_write_config "$work/perspectives-blackhole.yaml" "$BENCH_BLACKHOLE" false "$work/audit-blackhole.jsonl" \
        60000 1 120000
}

bench_lab_stop() {
    local work=$1 pid i
    knot_stop "$work/knot"
    nginx_stop "$work/nginx"
    if [ -f "$work/blackhole.pid" ]; then
        pid=$(cat "$work/blackhole.pid")
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        rm -f "$work/blackhole.pid"
    fi
}

bench_lab_up() {
    WORK=$(mktemp -d "/tmp/mpic-$1-lab.XXXXXX")
    trap 'bench_lab_stop "$WORK"; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    bench_lab_start "$WORK" >/dev/null || { echo "$1: the lab did not start" >&2; exit 1; }
}
