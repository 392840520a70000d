#!/usr/bin/env bash
# netns.sh up DIR [MPIC] | down DIR: the namespace lab (root): a routing-level hijack.
#
# Namespaces (names from DIR/netns.prefix, unique per run):
#   <p>-net    the "Internet": bridge br0 joining every other namespace
#   <p>-vic    the victim: 203.0.113.10 (nginx :80 with the owner's http-01
#              file) and 203.0.113.53 (knot: nsl.test, www -> 203.0.113.10)
#   <p>-att    the attacker: 203.0.113.66 on its link and the victim's
#              203.0.113.10 on lo (ARP only for link addresses), nginx :80
#              without the owner's file
#   <p>-coord  mpic: one veth per perspective, pc0 (primary) .. pc6, with
#              source addresses 203.0.113.20 .. .26; `ip rule from <src>
#              lookup 100+i` gives each perspective its own routing table,
#              where 203.0.113.10 is either on-link (the victim) or via
#              203.0.113.66 (a simulated BGP hijack: the attacker answers on
#              the victim's address)
#   <p>-ag1 .. <p>-ag6   with MPIC given: one `mpic agent` each (mutual TLS,
#              :8443) on 203.0.113.41 .. .46, resolving through the victim's
#              DNS from its own namespace; the coordinator reaches them from
#              203.0.113.30 (veth pcm). Hijack agent i from anywhere:
#                ip netns exec <p>-ag<i> ip route replace 203.0.113.10 via 203.0.113.66
# Only 203.0.113.0/24 (TEST-NET-3) is used. DIR/netns.env holds the exports.
# Hijack a perspective i from inside <p>-coord:
#   ip route replace 203.0.113.10 via 203.0.113.66 dev pc<i> table 10<i>
# `down` stops every process by its pidfile and deletes every namespace
# (which removes the veths and the bridge).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/knot.sh"
. "$here/nginx.sh"
. "$here/proc.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: netns.sh up DIR [MPIC] | down DIR" >&2; exit 2; }
mpic=${3:-}
PERSPECTIVES=7 # pc0 (primary) .. pc6
AGENTS=6       # ag1 .. ag6 (with MPIC)
# agent i: id, RIR, latitude, longitude (pairwise >= 500 km)
AGENT_SITES=("" "ag1:ARIN:45.52:-122.68" "ag2:RIPE:50.11:8.68" "ag3:RIPE:59.33:18.07" "ag4:APNIC:1.35:103.82"
    "ag5:LACNIC:-23.55:-46.63" "ag6:AFRINIC:-26.20:28.05")
OWNER_TOKEN=nsOwnerTok_0123456789abcdefghijklmn
OWNER_KA=$OWNER_TOKEN.nsOwnerThumbprint_0123456789abcdefghij

down() {
    local p ns
    [ -f "$dir/netns.prefix" ] || return 0
    p=$(cat "$dir/netns.prefix")
    nginx_stop "$dir/vic-www"
    nginx_stop "$dir/att-www"
    knot_stop "$dir/knot"
    local i
    for i in $(seq 1 $AGENTS); do
        [ -f "$dir/agent-$i.pid" ] && proc_stop "$dir/agent-$i.pid"
        ip netns del "$p-ag$i" 2>/dev/null
    done
    for ns in coord vic att net; do
        ip netns del "$p-$ns" 2>/dev/null
    done
    return 0
}

die() { echo "netns.sh: $*" >&2; down; exit 1; }

in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

up() {
    local i ns
    mkdir -p "$dir" || exit 1
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"
    P=mpicl$$
    echo "$P" >"$dir/netns.prefix"
    for ns in net vic att coord; do
        ip netns add "$P-$ns" || die "ip netns add $P-$ns"
        in_ns "$ns" ip link set lo up
    done
    in_ns net ip link add br0 type bridge || die "bridge"
    in_ns net ip link set br0 up
    # victim and attacker
    ip link add eth0 netns "$P-vic" type veth peer name nvic netns "$P-net" || die "veth vic"
    ip link add eth0 netns "$P-att" type veth peer name natt netns "$P-net" || die "veth att"
    for n in nvic natt; do
        in_ns net ip link set "$n" master br0
        in_ns net ip link set "$n" up
    done
    in_ns vic ip addr add 203.0.113.10/24 dev eth0
    in_ns vic ip addr add 203.0.113.53/24 dev eth0
    in_ns vic ip link set eth0 up
    in_ns att sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1
    in_ns att ip addr add 203.0.113.66/24 dev eth0
    in_ns att ip addr add 203.0.113.10/32 dev lo
    in_ns att ip link set eth0 up
    # the coordinator's perspectives
    in_ns coord sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_filter=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    for i in $(seq 0 $((PERSPECTIVES - 1))); do
        ip link add "pc$i" netns "$P-coord" type veth peer name "np$i" netns "$P-net" || die "veth pc$i"
        in_ns net ip link set "np$i" master br0
        in_ns net ip link set "np$i" up
        in_ns coord ip addr add "203.0.113.2$i/32" dev "pc$i"
        in_ns coord ip link set "pc$i" up
        in_ns coord ip route add 203.0.113.0/24 dev "pc$i" src "203.0.113.2$i" table "10$i"
        in_ns coord ip rule add from "203.0.113.2$i" lookup "10$i" priority "10$i"
    done
    # victim DNS and web, attacker web
    mkdir -p "$dir/zones"
    local hash
    hash=$(printf '%s' "$OWNER_KA" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
    cat >"$dir/zones/nsl.zone" <<ZONE
\$ORIGIN nsl.test.
\$TTL 1
@    SOA ns.nsl.test. hostmaster.nsl.test. 1 3600 600 86400 1
@    NS  ns.nsl.test.
ns   A   203.0.113.53
www  A   203.0.113.10
_acme-challenge.www TXT "$hash"
www  CAA 0 issue "ca.example"
ZONE
    in_ns vic bash -c ". '$here/knot.sh'; knot_start '$dir/knot' 203.0.113.53 53 '$dir/zones/nsl.zone'" ||
        die "knot (victim) did not start"
    # wait (<= 5 s) until every perspective reaches the victim's DNS address
    for i in $(seq 0 $((PERSPECTIVES - 1))); do
        local ok=0 k
        for k in $(seq 1 25); do
            if in_ns coord kdig -b "203.0.113.2$i" @203.0.113.53 +timeout=1 +retry=0 SOA nsl.test 2>/dev/null | grep -q 'status: NOERROR'; then ok=1; break; fi
            sleep 0.2
        done
        [ $ok = 1 ] || die "perspective pc$i cannot reach 203.0.113.53"
    done

    local who
    for who in vic att; do
        mkdir -p "$dir/$who-www/root/.well-known/acme-challenge"
        {
            nginx_preamble 64
            cat <<CONF
    server { listen 203.0.113.10:80; root root; }
}
CONF
        } >"$dir/$who-www/nginx.conf"
    done
    printf '%s' "$OWNER_KA" >"$dir/vic-www/root/.well-known/acme-challenge/$OWNER_TOKEN"
    printf 'attacker' >"$dir/att-www/root/index.html"
    chmod -R a+rX "$dir"
    in_ns vic bash -c ". '$here/nginx.sh'; nginx_start '$dir/vic-www' '$dir/vic-www/nginx.conf' http://203.0.113.10/" ||
        die "nginx (victim) did not start"
    in_ns att bash -c ". '$here/nginx.sh'; nginx_start '$dir/att-www' '$dir/att-www/nginx.conf' http://203.0.113.10/" ||
        die "nginx (attacker) did not start"

    [ -n "$mpic" ] && agents_up

    cat >"$dir/netns.env" <<ENV
export MPIC_NETNS_DIR=$dir
export MPIC_NETNS_PREFIX=$P
export MPIC_NETNS_COORD=$P-coord
export MPIC_NETNS_PERSPECTIVES=$PERSPECTIVES
export MPIC_NETNS_DNS=203.0.113.53:53
export MPIC_NETNS_VICTIM=203.0.113.10
export MPIC_NETNS_ATTACKER=203.0.113.66
export MPIC_NETNS_OWNER_TOKEN=$OWNER_TOKEN
export MPIC_NETNS_OWNER_KA=$OWNER_KA
export MPIC_NETNS_AGENTS=$([ -n "$mpic" ] && echo "$AGENTS" || echo 0)
export MPIC_NETNS_CERTS=$dir/certs
ENV
}

# Six agent namespaces on the bridge, each running `mpic agent` for its own
# perspective; the coordinator namespace gets pcm (203.0.113.30) to reach them.
agents_up() {
    local i id rir lat lon specs=("coordinator:IP:203.0.113.30")
    ip link add pcm netns "$P-coord" type veth peer name npm netns "$P-net" || die "veth pcm"
    in_ns net ip link set npm master br0
    in_ns net ip link set npm up
    in_ns coord ip addr add 203.0.113.30/32 dev pcm
    in_ns coord ip link set pcm up
    in_ns coord ip route add 203.0.113.40/29 dev pcm src 203.0.113.30
    for i in $(seq 1 $AGENTS); do
        specs+=("agent-$i:IP:203.0.113.4$i")
    done
    bash "$here/service/mkcerts.sh" "$dir/certs" "${specs[@]}" >/dev/null || die "certificates"
    {
        echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
        echo "defaults: {dns_timeout_ms: 1000, dns_tries: 3}"
        echo "network: {allow_reserved_ips: true, http_port: 80, tls_port: 443}"
        echo "audit: {path: $dir/agents-audit.jsonl, fsync: false}"
        echo "perspectives:"
        for i in $(seq 1 $AGENTS); do
            IFS=: read -r id rir lat lon <<<"${AGENT_SITES[$i]}"
            echo "  - {id: $id, rir: $rir, location: {lat: $lat, lon: $lon}, resolvers: [\"203.0.113.53:53\"]}"
        done
    } >"$dir/agents.yaml"
    for i in $(seq 1 $AGENTS); do
        ip netns add "$P-ag$i" || die "ip netns add $P-ag$i"
        in_ns "ag$i" ip link set lo up
        ip link add eth0 netns "$P-ag$i" type veth peer name "na$i" netns "$P-net" || die "veth ag$i"
        in_ns net ip link set "na$i" master br0
        in_ns net ip link set "na$i" up
        in_ns "ag$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1
        in_ns "ag$i" ip addr add "203.0.113.4$i/24" dev eth0
        in_ns "ag$i" ip link set eth0 up
        IFS=: read -r id _ _ _ <<<"${AGENT_SITES[$i]}"
        # not through in_ns: `ip netns exec` becomes the agent, so $! is its PID
        ip netns exec "$P-ag$i" "$mpic" agent --config "$dir/agents.yaml" --perspective "$id" \
            --listen "203.0.113.4$i:8443" --tls-cert "$dir/certs/agent-$i.pem" --tls-key "$dir/certs/agent-$i.key" \
            --client-ca "$dir/certs/ca.pem" >"$dir/agent-$i.log" 2>&1 &
        echo $! >"$dir/agent-$i.pid"
    done
    # wait (<= 10 s each) until the coordinator namespace reaches every agent
    for i in $(seq 1 $AGENTS); do
        local up=0 k
        for k in $(seq 1 50); do
            if in_ns coord bash -c "exec 3<>/dev/tcp/203.0.113.4$i/8443" 2>/dev/null; then up=1; break; fi
            sleep 0.2
        done
        [ $up = 1 ] || die "agent $i (203.0.113.4$i:8443) did not start: $(cat "$dir/agent-$i.log")"
    done
}

case "$cmd" in
up)
    [ "$(id -u)" = 0 ] || { echo "netns.sh: needs root" >&2; exit 77; }
    up
    ;;
down) down ;;
*) echo "usage: netns.sh up|down DIR" >&2; exit 2 ;;
esac
