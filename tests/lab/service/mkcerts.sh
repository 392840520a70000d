#!/usr/bin/env bash
# mkcerts.sh OUTDIR NAME:SAN[,SAN...] ...: a throw-away test CA and the
# certificates of the service lab, made fresh at every run with the openssl
# CLI (EC P-256); no key is ever stored in the repository.
#   OUTDIR/ca.pem, ca.key                 the lab CA (agents and coordinator trust it)
#   OUTDIR/<NAME>.pem, <NAME>.key         one leaf per argument, signed by the CA,
#                                         usable as TLS server and client, with the
#                                         given SANs (e.g. IP:127.0.30.11,DNS:fra.agents.test)
#   OUTDIR/rogue-ca.pem, rogue.pem/.key   a client certificate from another CA
set -euo pipefail
out=${1:?usage: mkcerts.sh OUTDIR NAME:SANS ...}
shift
mkdir -p "$out"
cd "$out"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # make_ca NAME CN
    newkey "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 2 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1.pem" 2>/dev/null
}

make_leaf() { # make_leaf NAME SANS CA
    local name=$1 sans=$2 ca=$3
    newkey "$name.key"
    openssl req -new -key "$name.key" -subj "/O=mpic lab/CN=$name" -out "$name.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
        "$sans" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
        -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

make_ca ca "mpic lab CA"
for spec in "$@"; do
    make_leaf "${spec%%:*}" "${spec#*:}" ca
done
make_ca rogue-ca "rogue CA"
make_leaf rogue "DNS:rogue.test" rogue-ca
chmod 600 ./*.key
