#!/usr/bin/env bash
# openmpic.sh start|stop DIR: replays Open MPIC's public integration domain,
# integration-testing.open-mpic.org, on loopback (no root), from the fixture
# /work/shared/fixtures/open-mpic-integration (MIT licence, Open MPIC
# project; its LICENSE is copied next to the served data), or $MPIC_OPENMPIC_FIXTURE.
#   127.0.81.1:15500   knot serving the fixture's zone.db, its web server
#                      address 140.82.1.140 remapped to 127.0.81.10 (the
#                      other addresses are challenge values and stay), plus
#                      an empty org. zone so a CAA climb ends in NODATA
#   127.0.81.10:15580  nginx serving the fixture's webroot with the
#                      fixture's rewrite rules (the vhost file is rewritten
#                      only in its listen and root lines; redirects without
#                      a port reach 15580 because the lab sets http_port)
# Writes DIR/perspectives.yaml (six remote perspectives in five RIRs, no
# primary: Open MPIC's model) and DIR/openmpic.env; stops everything by PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/knot.sh"
. "$here/nginx.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: openmpic.sh start|stop DIR" >&2; exit 2; }
fixture=${MPIC_OPENMPIC_FIXTURE:-/work/shared/fixtures/open-mpic-integration}
root=$(cd "$here/../.." && pwd)

NET=127.0.81
DNS=$NET.1
DNS_PORT=15500
WEB=$NET.10
HTTP_PORT=15580
ORIGIN=integration-testing.open-mpic.org.

stop_all() {
    nginx_stop "$dir/www"
    knot_stop "$dir/knot"
}
die() { echo "openmpic.sh: $*" >&2; stop_all; exit 1; }

case "$cmd" in
start)
    [ -f "$fixture/zone.db" ] || { echo "openmpic.sh: no fixture at $fixture" >&2; exit 1; }
    mkdir -p "$dir/zones" "$dir/www" || exit 1
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"
    cp "$fixture/LICENSE" "$dir/LICENSE.open-mpic"
    {
        echo "; integration-testing.open-mpic.org from the Open MPIC project's integration"
        echo "; fixture (MIT licence, see LICENSE.open-mpic); 140.82.1.140 -> $WEB for the lab."
        echo "\$ORIGIN $ORIGIN"
        sed "s/140\.82\.1\.140/$WEB/g" "$fixture/zone.db"
    } >"$dir/zones/open-mpic.zone"
    printf '$ORIGIN org.\n$TTL 1\n@ SOA ns.org. hostmaster.org. 1 3600 600 86400 1\n@ NS ns.org.\nns A %s\n' "$DNS" \
        >"$dir/zones/org.zone"
    knot_start "$dir/knot" $DNS $DNS_PORT "$dir/zones/open-mpic.zone" "$dir/zones/org.zone" ||
        die "knot did not start"

    cp -r "$fixture/webroot" "$dir/www/webroot"
    chmod -R u+w,a+rX "$dir/www"
    # the fixture's vhost with lab listen and root lines
    sed -e '/^[[:space:]]*listen /d' \
        -e "s|^\([[:space:]]*\)server_name \(.*\)|\1listen $WEB:$HTTP_PORT;\n\1server_name \2|" \
        -e "s|^\([[:space:]]*\)root .*|\1root webroot;|" \
        "$fixture/nginx-vhost.conf" >"$dir/www/vhost.conf"
    grep -q "listen $WEB:$HTTP_PORT;" "$dir/www/vhost.conf" || die "vhost translation failed"
    {
        nginx_preamble 256
        cat <<CONF
    include vhost.conf;
}
CONF
    } >"$dir/www/nginx.conf"
    nginx_start "$dir/www" "$dir/www/nginx.conf" "http://$WEB:$HTTP_PORT/" || die "nginx did not start"

    {
        echo "issuer: {caa_domains: [ca.example], account_uri_prefixes: [\"https://ca.example/acme/acct/\"]}"
        echo "policy: $root/policies/br.lua"
        echo "selection_secret: openmpic-replay"
        echo "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 5000, dns_timeout_ms: 1000, dns_tries: 2}"
        echo "network: {allow_reserved_ips: true, http_port: $HTTP_PORT, tls_port: 15543}"
        echo "audit: {path: $dir/audit.jsonl, fsync: false}"
        echo "perspectives:"
        echo "  - {id: us-east-1, rir: ARIN, location: {lat: 39.04, lon: -77.49}, resolvers: [\"$DNS:$DNS_PORT\"]}"
        echo "  - {id: us-west-2, rir: ARIN, location: {lat: 45.52, lon: -122.68}, resolvers: [\"$DNS:$DNS_PORT\"]}"
        echo "  - {id: eu-central-1, rir: RIPE, location: {lat: 50.11, lon: 8.68}, resolvers: [\"$DNS:$DNS_PORT\"]}"
        echo "  - {id: ap-southeast-1, rir: APNIC, location: {lat: 1.35, lon: 103.82}, resolvers: [\"$DNS:$DNS_PORT\"]}"
        echo "  - {id: sa-east-1, rir: LACNIC, location: {lat: -23.55, lon: -46.63}, resolvers: [\"$DNS:$DNS_PORT\"]}"
        echo "  - {id: af-south-1, rir: AFRINIC, location: {lat: -33.92, lon: 18.42}, resolvers: [\"$DNS:$DNS_PORT\"]}"
    } >"$dir/perspectives.yaml"
    cat >"$dir/openmpic.env" <<ENV
export MPIC_OPENMPIC_DIR=$dir
export MPIC_OPENMPIC_CONFIG=$dir/perspectives.yaml
export MPIC_OPENMPIC_DNS=$DNS:$DNS_PORT
export MPIC_OPENMPIC_WEB=$WEB:$HTTP_PORT
ENV
    ;;
stop)
    [ -d "$dir" ] || exit 0
    stop_all
    ;;
*) echo "usage: openmpic.sh start|stop DIR" >&2; exit 2 ;;
esac
