#!/usr/bin/env python3
"""faultweb.py ADDR PORT MODE: a misbehaving web server for fault tests.

MODE endless-headers: answers "200 OK" then header lines forever.
MODE drip: accepts, then sends one byte of a response every second (slowloris).
MODE silent: accepts and never sends anything.
Runs until killed.
"""
import socket
import sys
import threading
import time


def serve(conn, mode):
    try:
        conn.recv(65536)
        if mode == "endless-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
            while True:
                conn.sendall(line)
        elif mode == "drip":
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
                conn.sendall(bytes([b]))
                time.sleep(1)
        else:
            time.sleep(3600)
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
