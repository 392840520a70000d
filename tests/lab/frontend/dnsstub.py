#!/usr/bin/env python3
"""dnsstub.py ADDR PORT: a UDP DNS responder for the front-end lab that
answers every query with REFUSED (the question echoed). A perspective's
health canary counts any DNS answer of its resolver as "reachable" when no
canary name is configured, which is all the lab needs. Stop it by its PID."""
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
while True:
    data, peer = s.recvfrom(4096)
    if len(data) < 12:
        continue
    flags = int.from_bytes(data[2:4], "big")
    flags = 0x8000 | (flags & 0x7900) | 0x0080 | 5  # QR, opcode and RD kept, RA, REFUSED
    i = 12  # the question: labels up to the root, type, class
    while i < len(data) and data[i] != 0 and data[i] < 64:
        i += data[i] + 1
    i += 5
    if i > len(data):
        continue
    # one question, no answer, authority or additional records
    s.sendto(data[0:2] + flags.to_bytes(2, "big") + b"\0\1\0\0\0\0\0\0" + data[12:i], peer)
