#!/usr/bin/env bash
# mkcerts.sh OUTDIR: generate the TLS-ALPN lab certificates (REFERENCE 4.5).
#
# Every certificate is created fresh at lab start with the openssl CLI (EC
# P-256 keys); nothing secret is stored in the repository. Two variants that
# the CLI refuses to build (a duplicated extension) are made by re-signing a
# modified TBSCertificate with `openssl dgst -sign` (certs/dupext.py).
#
# Key authorization used for every "good" acmeIdentifier value:
#   KEY_AUTH = "mpic-lab-token.mpic-lab-account-thumbprint"
#   extension 1.3.6.1.5.5.7.1.31 value = DER 04 20 || SHA-256(KEY_AUTH)
# It is also written to OUTDIR/key_authorization.
# Identifiers: DNS "alpn.mpic.example", IPv4 127.0.0.61, IPv6 ::1.
#
# OUTDIR/<variant>.pem and OUTDIR/<variant>.key for each variant listed in
# OUTDIR/variants (one name a line).
set -euo pipefail

out=${1:?usage: mkcerts.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cd "$out"

KEY_AUTH="mpic-lab-token.mpic-lab-account-thumbprint"
DNS_ID="alpn.mpic.example"
IP4_ID="127.0.0.61"
IP6_ID="::1"
printf '%s' "$KEY_AUTH" > key_authorization

hexcolon() { od -An -v -tx1 | tr -s ' \n' ':' | sed 's/^://; s/:$//'; }
good=$(printf '%s' "$KEY_AUTH" | openssl dgst -sha256 -binary | hexcolon)
wrong=$(printf '%s' "not-the-key-authorization" | openssl dgst -sha256 -binary | hexcolon)
short=$(printf '%s' "$KEY_AUTH" | openssl dgst -sha256 -binary | head -c 31 | hexcolon)
ACME_OK="1.3.6.1.5.5.7.1.31=critical,DER:04:20:$good"

openssl ecparam -name prime256v1 -genkey -noout -out leaf.key 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out other.key 2>/dev/null

: > variants

# self VARIANT SUBJECT EXTLINE... : self-signed certificate with the given extensions
self() {
    local name=$1 subj=$2
    shift 2
    { printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\n'
      printf 'subjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n'
      printf '%s\n' "$@"; } > "$name.cnf"
    openssl req -x509 -new -key leaf.key -subj "$subj" -days 30 -sha256 \
        -config "$name.cnf" -extensions ext -out "$name.pem" 2>/dev/null
    cp leaf.key "$name.key"
    echo "$name" >> variants
}

# signed VARIANT CAKEY CACERT SUBJECT EXTLINE... : issued by another key
signed() {
    local name=$1 cakey=$2 cacert=$3 subj=$4
    shift 4
    { printf '[ext]\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n'
      printf '%s\n' "$@"; } > "$name.cnf"
    openssl req -new -key leaf.key -subj "$subj" -out "$name.csr" \
        -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n') 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA "$cacert" -CAkey "$cakey" -CAcreateserial \
        -days 30 -sha256 -extfile "$name.cnf" -extensions ext -out "$name.pem" 2>/dev/null
    cp leaf.key "$name.key"
    echo "$name" >> variants
}

self valid_dns "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "$ACME_OK"
self valid_ipv4 "/O=mpic lab" "subjectAltName=IP:$IP4_ID" "$ACME_OK"
self valid_ipv6 "/CN=ipv6 lab" "subjectAltName=IP:$IP6_ID" "$ACME_OK"
self wrong_digest "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "1.3.6.1.5.5.7.1.31=critical,DER:04:20:$wrong"
self noncritical "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "1.3.6.1.5.5.7.1.31=DER:04:20:$good"
self missing_acme "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID"
self missing_san "/CN=$DNS_ID" "$ACME_OK"
self obsolete_oid "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "1.3.6.1.5.5.7.1.30.1=critical,DER:04:20:$good"
self malformed_short "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "1.3.6.1.5.5.7.1.31=critical,DER:04:1f:$short"
self malformed_type "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "1.3.6.1.5.5.7.1.31=critical,DER:0c:20:$good"
self wrong_name "/CN=$DNS_ID" "subjectAltName=DNS:other.mpic.example" "$ACME_OK"
# the identifier in other letter case (DNS names compare case-insensitively: RFC 4343)
self upper_dns "/CN=ALPN.Mpic.EXAMPLE" "subjectAltName=DNS:ALPN.Mpic.EXAMPLE" "$ACME_OK"
self extra_name "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID,DNS:extra.mpic.example" "$ACME_OK"
self name_plus_ip "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID,IP:$IP4_ID" "$ACME_OK"
self ip_as_dns "/CN=$IP4_ID" "subjectAltName=DNS:$IP4_ID" "$ACME_OK"
self extra_ip "/CN=$IP4_ID" "subjectAltName=IP:$IP4_ID,IP:127.0.0.62" "$ACME_OK"
self ipv4_mapped "/CN=$IP4_ID" "subjectAltName=IP:::ffff:$IP4_ID" "$ACME_OK"

# Not self-signed, variant 1: issued by a separate CA (issuer != subject).
openssl req -x509 -new -key ca.key -subj "/CN=mpic lab CA" -days 30 -sha256 \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:true\n') \
    -extensions v3_ca -out ca.pem 2>/dev/null
signed not_self_signed_ca ca.key ca.pem "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "$ACME_OK"
# Variant 2: issuer name byte-identical to the subject, signed by a different key.
openssl req -x509 -new -key other.key -subj "/CN=$DNS_ID" -days 30 -sha256 \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:true\n') \
    -extensions v3_ca -out samename_ca.pem 2>/dev/null
signed not_self_signed_samename other.key samename_ca.pem "/CN=$DNS_ID" "subjectAltName=DNS:$DNS_ID" "$ACME_OK"

# Duplicated extensions: re-sign a valid TBSCertificate with one extension repeated.
python3 "$here/certs/dupext.py" valid_dns.pem leaf.key 1.3.6.1.5.5.7.1.31 dup_acme.pem
cp leaf.key dup_acme.key; echo dup_acme >> variants
python3 "$here/certs/dupext.py" valid_dns.pem leaf.key 2.5.29.17 dup_san.pem
cp leaf.key dup_san.key; echo dup_san >> variants

rm -f ./*.csr ./*.cnf ./*.srl
