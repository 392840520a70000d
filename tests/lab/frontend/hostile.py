#!/usr/bin/env python3
"""hostile.py: hostile clients against the front-end lab of test_frontend.sh
(stdlib only). Every check prints "ok <name>" or "FAIL <name>: why"; the
exit status is the number of failures (0: all passed). Every wait is bounded."""
import argparse
import json
import os
import socket
import threading
import time

SERVE = ("127.0.41.10", 15710)
AGENT = ("127.0.41.11", 15711)
LOWFD = ("127.0.41.12", 15712)

failures = []


def check(name, ok, why=""):
    if ok:
        print("ok", name, flush=True)
    else:
        print("FAIL", name + ":", why, flush=True)
        failures.append(name)


def connect(dst, src=None, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(dst)
    return s


def read_all(s, limit_s):
    """Everything the peer sends until it closes (closed=True) or limit_s passes."""
    end = time.monotonic() + limit_s
    data = b""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def exchange(dst, raw, src=None, limit_s=5.0):
    s = connect(dst, src)
    try:
        s.sendall(raw)
        return read_all(s, limit_s)
    finally:
        s.close()


def statuses(data):
    """Status codes of the responses in a byte stream, in order (each framed
    by its Content-Length; the servers under test always send one)."""
    out = []
    while data.startswith(b"HTTP/1."):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].split(b"\r\n")
        try:
            out.append(int(head[0][9:12]))
        except ValueError:
            break
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        data = data[end + 4 + length:]
    return out


def request(dst, method, path, headers=None, body=b"", src=None, limit_s=5.0):
    h = {"Host": "lab", "Connection": "close"}
    h.update(headers or {})
    if body or method == "POST":
        h["Content-Length"] = str(len(body))
    raw = ("%s %s HTTP/1.1\r\n" % (method, path)).encode()
    raw += b"".join(("%s: %s\r\n" % kv).encode() for kv in h.items()) + b"\r\n" + body
    data, _ = exchange(dst, raw, src, limit_s)
    st = statuses(data)
    return (st[0] if st else None), data.split(b"\r\n\r\n", 1)[-1]


def wait_health_200(dst, src, limit_s):
    end = time.monotonic() + limit_s
    last = None
    while time.monotonic() < end:
        try:
            st, body = request(dst, "GET", "/healthz", src=src, limit_s=2)
            last = (st, body[:200])
            if st == 200:
                return True, last
        except OSError as e:
            last = repr(e)
        time.sleep(0.3)
    return False, last


# ---- /metrics and /healthz ---------------------------------------------------

def test_metrics(token):
    st, _ = request(SERVE, "GET", "/metrics", src="127.0.41.30")
    check("metrics_without_token_401", st == 401, "status %r" % st)
    st, _ = request(SERVE, "GET", "/metrics", {"Authorization": "Bearer wrong"}, src="127.0.41.30")
    check("metrics_wrong_token_401", st == 401, "status %r" % st)
    st, body = request(SERVE, "GET", "/metrics", {"Authorization": "Bearer " + token}, src="127.0.41.30")
    check("metrics_with_token_200", st == 200 and b"mpic_" in body, "status %r" % st)


# ---- framing -------------------------------------------------------------------

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: lab\r\n\r\n"


def one_400_and_close(name, raw):
    data, closed = exchange(SERVE, raw, "127.0.41.31", 5)
    st = statuses(data)
    check(name, st == [400] and closed, "responses %r, closed %r: %r" % (st, closed, data[:300]))


def test_framing():
    one_400_and_close("duplicate_content_length_400", b"POST /nothing HTTP/1.1\r\nHost: lab\r\nContent-Length: 2\r\n"
                      b"Content-Length: 39\r\n\r\n{}" + SMUGGLED)
    one_400_and_close("conflicting_content_length_in_one_header_400", b"POST /nothing HTTP/1.1\r\nHost: lab\r\n"
                      b"Content-Length: 2, 2\r\n\r\n{}" + SMUGGLED)
    one_400_and_close("content_length_with_transfer_encoding_400", b"POST /nothing HTTP/1.1\r\nHost: lab\r\n"
                      b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    one_400_and_close("transfer_encoding_xchunked_400", b"POST /nothing HTTP/1.1\r\nHost: lab\r\n"
                      b"Transfer-Encoding: xchunked\r\n\r\n" + SMUGGLED)
    one_400_and_close("transfer_encoding_gzip_chunked_400", b"POST /nothing HTTP/1.1\r\nHost: lab\r\n"
                      b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    one_400_and_close("body_on_get_400", b"GET /nothing HTTP/1.1\r\nHost: lab\r\nContent-Length: %d\r\n\r\n"
                      % len(SMUGGLED) + SMUGGLED)
    # what stays allowed: chunked alone, one Content-Length, keep-alive
    data, _ = exchange(SERVE, b"POST /nothing HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
                       "127.0.41.31", 5)
    check("chunked_alone_is_served", statuses(data) == [404, 200], "responses %r" % statuses(data))
    data, _ = exchange(SERVE, b"GET /healthz HTTP/1.1\r\nHost: lab\r\nContent-Length: 0\r\n\r\n"
                       + SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), "127.0.41.31", 5)
    check("keep_alive_two_requests_served", statuses(data) == [200, 200], "responses %r" % statuses(data))


# ---- connection caps -----------------------------------------------------------

def test_per_address_cap():
    held = [connect(SERVE, "127.0.41.20") for _ in range(4)]
    try:
        time.sleep(0.3)
        extra = connect(SERVE, "127.0.41.20")
        data, closed = read_all(extra, 2.0)
        extra.close()
        check("per_address_cap_closes_the_extra_connection", closed and not data,
              "closed %r, data %r" % (closed, data[:100]))
        st, _ = request(SERVE, "GET", "/healthz", src="127.0.41.21", limit_s=2)
        check("per_address_cap_other_address_served", st == 200, "status %r" % st)
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        data, _ = read_all(held[0], 2.0)
        check("per_address_cap_connections_within_it_served", statuses(data) == [200], "responses %r" % statuses(data))
    finally:
        for s in held:
            s.close()
    # the caps count open connections: once they close, the address is served again
    time.sleep(0.3)
    st, _ = request(SERVE, "GET", "/healthz", src="127.0.41.20", limit_s=2)
    check("per_address_cap_released_on_close", st == 200, "status %r" % st)


def test_listener_cap():
    """20 connections from 5 addresses, 4 each (within the per-address cap),
    and one more from a sixth: the listener cap (20, with a few of the other
    checks' connections possibly still open) closes some at once."""
    socks, closed = [], 0
    try:
        for i in range(21):
            socks.append(connect(SERVE, "127.0.41.%d" % (100 + i // 4)))
        time.sleep(0.5)
        for s in socks:
            s.settimeout(0.05)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed += 1
    finally:
        for s in socks:
            s.close()
    check("listener_cap_closes_connections_beyond_it", 1 <= closed <= 8, "%d of 21 closed (cap 20)" % closed)
    time.sleep(0.3)
    st, _ = request(SERVE, "GET", "/healthz", src="127.0.41.120", limit_s=2)
    check("listener_cap_released_on_close", st == 200, "status %r" % st)


# ---- deadlines -----------------------------------------------------------------

def drip(dst, src, payload, results, name, every_s=1.0, limit_s=9.0):
    """Send payload one byte per every_s; how long until the server closes."""
    s = connect(dst, src)
    t0 = time.monotonic()
    closed_at = None
    try:
        for b in payload:
            if time.monotonic() - t0 > limit_s:
                break
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed_at = time.monotonic() - t0
                break
            s.settimeout(every_s)
            try:
                chunk = s.recv(4096)
                if not chunk:
                    closed_at = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed_at = time.monotonic() - t0
                break
    finally:
        s.close()
    results[name] = closed_at


def test_drips():
    results = {}
    head = b"GET /healthz HTTP/1.1\r\nHost: lab\r\nUser-Agent: drip\r\n\r\n"
    # a TLS record header and the start of a ClientHello, then more of it
    hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + bytes(range(32))
    threads = [threading.Thread(target=drip, args=(SERVE, "127.0.41.32", head, results, "http")),
               threading.Thread(target=drip, args=(AGENT, "127.0.41.32", hello, results, "tls"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    for name, what in (("http", "request_head_drip_closed_at_deadline"), ("tls", "tls_handshake_drip_closed_at_deadline")):
        t = results.get(name)
        check(what, t is not None and 2.5 <= t <= 5.0, "closed after %r s (deadline 3 s)" % t)


# ---- in-flight limit -------------------------------------------------------------

def test_inflight(token):
    body = json.dumps({"check_type": "dcv", "domain_or_ip_target": "127.0.41.50",
                       "dcv_check_parameters": {"validation_method": "acme-http-01", "token": "tok",
                                                "key_authorization": "tok.thumb"}}).encode()
    raw = (b"POST /mpic HTTP/1.1\r\nHost: lab\r\nAuthorization: Bearer " + token.encode() +
           b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    slow = []
    try:
        for _ in range(2):
            s = connect(SERVE, "127.0.41.33")
            s.sendall(raw)
            slow.append(s)
        time.sleep(0.5)
        st, resp = request(SERVE, "POST", "/mpic", {"Authorization": "Bearer " + token}, body, src="127.0.41.34")
        check("inflight_limit_is_exhausted", st == 503 and b"in flight" in resp, "status %r %r" % (st, resp[:200]))
        st, resp = request(SERVE, "GET", "/healthz", src="127.0.41.34", limit_s=3)
        check("healthz_answers_while_inflight_exhausted", st == 200 and b'"status"' in resp,
              "status %r %r" % (st, resp[:200]))
        for s in slow:  # still held by the hung site, not answered
            s.settimeout(0.01)
            try:
                got = s.recv(1)
            except socket.timeout:
                got = None
            check("slow_request_still_in_flight", got is None, "got %r" % got)
    finally:
        for s in slow:
            s.close()


# ---- descriptors ---------------------------------------------------------------

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emfile(pid, log):
    before = os.path.getsize(log)
    flood = []
    try:
        for i in range(120):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.41.%d" % (60 + i % 20), 0))
            s.setblocking(False)
            try:
                s.connect(LOWFD)
            except BlockingIOError:
                pass
            flood.append(s)
        time.sleep(1.0)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(3.0)
        cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        check("emfile_cpu_stays_low", cpu < 0.25, "%.0f%% of a core while out of descriptors" % (cpu * 100))
        with open(log, "rb") as f:
            f.seek(before)
            grown = f.read()
        lines = [ln for ln in grown.splitlines() if b"accept() failed" in ln]
        check("emfile_logged_a_bounded_number_of_times",
              1 <= len(lines) <= 2 and len(grown) < 20000 and b"Too many open files" in grown,
              "%d accept lines, %d bytes logged: %r" % (len(lines), len(grown), grown[-300:]))
    finally:
        for s in flood:
            s.close()
    ok, last = wait_health_200(LOWFD, "127.0.41.35", 8.0)
    check("emfile_healthz_answers_again_after_close", ok, "last %r" % (last,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--lowfd-pid", type=int, required=True)
    ap.add_argument("--lowfd-log", required=True)
    a = ap.parse_args()
    ok, last = wait_health_200(SERVE, "127.0.41.30", 8.0)
    check("serve_healthy_at_start", ok, "last %r" % (last,))
    drips = threading.Thread(target=test_drips)
    drips.start()  # 3-5 s in the background while the rest runs
    for name, fn in (("metrics", lambda: test_metrics(a.token)), ("framing", test_framing),
                     ("per_address_cap", test_per_address_cap), ("inflight", lambda: test_inflight(a.token)),
                     ("emfile", lambda: test_emfile(a.lowfd_pid, a.lowfd_log))):
        try:
            fn()
        except Exception as e:  # a check that raises is a failure, the others still run
            check(name, False, "raised %r" % (e,))
    drips.join(20)
    try:
        test_listener_cap()
    except Exception as e:
        check("listener_cap", False, "raised %r" % (e,))
    print("%d failed" % len(failures), flush=True)
    return min(len(failures), 100)


if __name__ == "__main__":
    raise SystemExit(main())
