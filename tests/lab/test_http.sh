#!/usr/bin/env bash
# test_http.sh MPIC_BINARY: the HTTP lab. Starts nginx (tests/lab/www) on
# 127.0.0.71:15380 (http), 127.0.0.71:15381 (https, throw-away self-signed
# certificate) and [::1]:15383, exports the addresses as MPIC_LAB_HTTP*,
# runs `MPIC test tests/lua/http` and stops nginx.
# With `--load TOTAL CONCURRENCY` it runs tests/lab/http_load.lua instead
# (request rate; run the binary under valgrind/ASan for the leak check).
set -u
mpic=${1:?usage: test_http.sh MPIC_BINARY [--load TOTAL CONCURRENCY]}
mode=${2:-test}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/nginx.sh"

work=$(mktemp -d /tmp/mpic-http-lab.XXXXXX)
cleanup() {
    nginx_stop "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "test_http.sh: $*" >&2; exit 1; }

chmod 755 "$work"
cp -r "$here/www/root" "$work/root" || die "copy web root"
head -c 1048576 /dev/zero | tr '\0' 'b' >"$work/root/big" || die "big file"
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lab.test \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" >/dev/null 2>&1 || die "certificate"
cp "$here/www/nginx.conf" "$work/nginx.conf" # relative paths resolve inside $work
chmod -R a+rX "$work"

nginx_start "$work" "$work/nginx.conf" "http://127.0.0.71:15380/" || die "nginx failed to start"

export MPIC_LAB_HTTP=127.0.0.71:15380
export MPIC_LAB_HTTPS=127.0.0.71:15381
export MPIC_LAB_HTTP6=[::1]:15383
export MPIC_LAB_HTTP_REFUSED=127.0.0.71:15382
export MPIC_LAB_TOKEN=evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA
export MPIC_LAB_KEY_AUTH
MPIC_LAB_KEY_AUTH=$(cat "$work/root/.well-known/acme-challenge/$MPIC_LAB_TOKEN")

cd "$root" || exit 1
if [ "$mode" = --load ]; then
    # MPIC may be a command line such as "valgrind --leak-check=full build/mpic"
    $mpic run tests/lab/http_load.lua "${3:-10000}" "${4:-100}"
else
    "$mpic" test tests/lua/http
fi
