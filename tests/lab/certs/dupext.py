#!/usr/bin/env python3
"""dupext.py IN.pem KEY.pem OID OUT.pem: repeat one extension of a certificate.

The openssl CLI refuses to put the same extension twice in a certificate, so
the duplicate-extension lab certificates are made here: decode IN.pem's
TBSCertificate, append a copy of the extension whose OID is OID, re-sign the
new TBSCertificate with KEY.pem (ECDSA with SHA-256, via `openssl dgst`) and
write the result. Uses only the Python standard library and the openssl CLI.
"""
import base64
import subprocess
import sys


def read_tlv(buf, pos):
    """Return (tag, header_len, content_start, end) of the TLV at pos."""
    tag = buf[pos]
    first = buf[pos + 1]
    if first < 0x80:
        length, hlen = first, 2
    else:
        n = first & 0x7F
        length = int.from_bytes(buf[pos + 2:pos + 2 + n], "big")
        hlen = 2 + n
    return tag, hlen, pos + hlen, pos + hlen + length


def enc_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + enc_len(len(content)) + content


def children(buf, start, end):
    out = []
    pos = start
    while pos < end:
        _, _, _, nxt = read_tlv(buf, pos)
        out.append(buf[pos:nxt])
        pos = nxt
    return out


def oid_der(text):
    arcs = [int(a) for a in text.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def main():
    src, key, oid, dst = sys.argv[1:5]
    pem = open(src).read()
    b64 = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    cert = base64.b64decode(b64)
    _, _, cstart, cend = read_tlv(cert, 0)
    tbs, alg, _sig = children(cert, cstart, cend)
    _, _, tstart, tend = read_tlv(tbs, 0)
    fields = children(tbs, tstart, tend)
    if fields[-1][0] != 0xA3:
        sys.exit("no extensions in " + src)
    ext_wrap = fields[-1]
    _, _, wstart, wend = read_tlv(ext_wrap, 0)
    _, _, sstart, send = read_tlv(ext_wrap, wstart)
    exts = children(ext_wrap, sstart, send)
    want = oid_der(oid)
    match = [e for e in exts if e[read_tlv(e, 0)[2]:].startswith(want)]
    if not match:
        sys.exit("extension %s not found in %s" % (oid, src))
    exts.append(match[0])
    new_ext = tlv(0xA3, tlv(0x30, b"".join(exts)))
    new_tbs = tlv(0x30, b"".join(fields[:-1]) + new_ext)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=new_tbs,
                         stdout=subprocess.PIPE, check=True).stdout
    new_cert = tlv(0x30, new_tbs + alg + tlv(0x03, b"\x00" + sig))
    text = base64.b64encode(new_cert).decode()
    with open(dst, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
        for i in range(0, len(text), 64):
            f.write(text[i:i + 64] + "\n")
        f.write("-----END CERTIFICATE-----\n")


if __name__ == "__main__":
    main()
