#!/usr/bin/env python3
"""faultweb.py ADDR PORT MODE: a misbehaving web server for fault tests.

MODE endless-headers: answers "200 OK" then header lines forever.
MODE drip: accepts, then sends one byte of a response every second (slowloris).
MODE silent: accepts and never sends anything.
MODE redirect-loop: answers every request with a 302 to /loop/N+1 on the
  same host (an endless redirect chain).
MODE huge-body: answers "200 OK" with a 1 GiB body, sent as fast as the
  client reads it.
Runs until killed.
"""
import socket
import sys
import threading
import time


def serve(conn, mode):
    try:
        head = conn.recv(65536)
        if mode == "redirect-loop":
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 2 else "/"
            n = int(path.rsplit("/", 1)[-1]) if path.startswith("/loop/") and path.rsplit("/", 1)[-1].isdigit() else 0
            conn.sendall(("HTTP/1.1 302 Found\r\nLocation: /loop/%d\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n" % (n + 1)).encode())
        elif mode == "huge-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
            chunk = b"x" * 65536
            for _ in range(16384):
                conn.sendall(chunk)
        elif mode == "endless-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
            while True:
                conn.sendall(line)
        elif mode == "drip":
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
                conn.sendall(bytes([b]))
                time.sleep(1)
        else:
            # hold the connection, silent, until the client gives up
            conn.settimeout(3600)
            while conn.recv(4096):
                pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
