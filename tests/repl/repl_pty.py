#!/usr/bin/env python3
"""Drive `mpic repl` in a pseudo-terminal: tab completion of mpic names and
perspective ids, multi-line input, Ctrl-C cancelling a running line and
discarding a typed one, ':' commands, validation responses shown as the
`mpic validate` table, history saved on Ctrl-D.
usage: repl_pty.py MPIC_BINARY WORKDIR"""
import os
import pty
import re
import select
import signal
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]|\x07|\r")

mpic, work = sys.argv[1], sys.argv[2]
config = os.path.join(work, "perspectives.yaml")
with open(config, "w") as f:
    f.write("""issuer: {caa_domains: [ca.example]}
audit: {path: %s/audit.jsonl, fsync: false}
primary: primary
perspectives:
  - {id: primary, rir: ARIN, location: {lat: 39.04, lon: -77.49}, resolvers: ["127.0.0.1:9"]}
  - {id: fra, rir: RIPE, location: {lat: 50.11, lon: 8.68}, resolvers: ["127.0.0.1:9"]}
  - {id: sgp, rir: APNIC, location: {lat: 1.35, lon: 103.82}, resolvers: ["127.0.0.1:9"]}
""" % work)

pid, fd = pty.fork()
if pid == 0:
    os.environ["HOME"] = work
    os.environ["TERM"] = "xterm"
    os.execv(mpic, [mpic, "repl", "--config", config])

out = b""
failures = []
passed = 0


def clean(b):
    return ANSI.sub(b"", b).decode(errors="replace")


def read_until(pattern, timeout):
    """Read until the cleaned output since the mark matches pattern."""
    global out
    end = time.time() + timeout
    while time.time() < end:
        if re.search(pattern, clean(out[mark:])):
            return True
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    return re.search(pattern, clean(out[mark:])) is not None


def settle(seconds):
    """Keep reading output for the given time."""
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            out += data


def step(name, keys, pattern, timeout=5.0, pause=0.0):
    """Send keys (a list of strings, with a pause between them), expect pattern."""
    global mark, passed
    mark = len(out)
    for k in keys:
        os.write(fd, k.encode())
        if pause:
            settle(pause)
    if read_until(pattern, timeout):
        passed += 1
        print("ok   " + name)
    else:
        failures.append(name)
        print("FAIL %s: expected /%s/ in %r" % (name, pattern, clean(out[mark:])[-600:]))
    # wait for the next prompt so steps do not overlap
    read_until(r"mpic> $", 3.0)


mark = 0
try:
    if not read_until(r"mpic> $", 10):
        print("FAIL start: no prompt: %r" % clean(out))
        sys.exit(1)
    step("complete_dotted_name", ["mpic.js\t", "enc\t", "{a=1})\r"], r'mpic\.json\.encode\(\{a=1\}\)\n"\{\\"a\\":1\}"', pause=0.3)
    step("complete_perspective_id", ['({perspective = "fr\t', '"}).perspective\r'], r'perspective = "fra"\}\)\.perspective\n"fra"', pause=0.3)
    step("multi_line_input", ["function twice(x)\r", "return x * 2\r", "end\r", "twice(21)\r"], r">> .*\n.*\n42\n", pause=0.2)
    mark = len(out)
    os.write(fd, b"mpic.sleep(100000)\r")
    settle(0.5)
    t0 = time.time()
    step("ctrl_c_cancels_the_running_line", ["\x03"], r"cancelled\n.*mpic> $", timeout=5.0)
    elapsed = time.time() - t0
    if elapsed > 3.0:
        failures.append("ctrl_c_returns_promptly")
        print("FAIL ctrl_c_returns_promptly: took %.1f s" % elapsed)
    step("repl_still_works_after_ctrl_c", ["1 + 1\r"], r"\n2\n")
    mark = len(out)
    os.write(fd, b"while true do end\r")
    settle(0.5)
    step("ctrl_c_stops_a_busy_loop", ["\x03"], r"interrupted(.*\n)*.*mpic> $", timeout=5.0)
    step("ctrl_c_discards_a_typed_line", ["half typed", "\x03", "2 + 3\r"], r"\n5\n", pause=0.3)
    step("help_command", [":help\r"], r":perspectives .*\n.*:reload")
    step("perspectives_command", [":persp\t\r"], r"sgp +APNIC .* unhealthy .*resolver does not answer", pause=0.3)
    step("response_shown_as_table",
         ['require("mpic.testing").scenario{date = "2026-12-16", outcomes = {["*"] = "pass"},'
          ' config = require("mpic.testing").config{defaults = {perspective_count = 5}}}.response\r'],
         r"perspective +rir +distance +result.*\n(.*\n){6}VALID: dcv acme-dns-01 for example\.com")
    step("explain_command", [":explain\r"], r"decided by: quorum-met")
    step("syntax_error_reported", ["1 +\r", "+\r"], r"unexpected symbol")
    step("runtime_error_reported", ["error('boom')\r"], r"boom")
    # Ctrl-D only once the prompt is back: typed while a line still runs, the
    # terminal is in canonical mode and the EOF can be lost when the line
    # editor switches it back to raw mode for the next prompt
    read_until(r"mpic> $", 10.0)
    mark = len(out)
    os.write(fd, b"\x04")
    status = None
    end = time.time() + 20  # leak checking at exit (sanitizer builds) takes a while
    while time.time() < end:
        settle(0.1)
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            status = os.waitstatus_to_exitcode(st)
            break
    if status == 0:
        passed += 1
        print("ok   ctrl_d_exits_cleanly")
    else:
        failures.append("ctrl_d_exits_cleanly")
        print("FAIL ctrl_d_exits_cleanly: status %r" % status)
    hist = os.path.join(work, ".mpic_history")
    if os.path.exists(hist) and "twice(21)" in open(hist, errors="replace").read():
        passed += 1
        print("ok   history_saved")
    else:
        failures.append("history_saved")
        print("FAIL history_saved")
finally:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass

print("%d passed, %d failed" % (passed, len(failures)))
sys.exit(1 if failures or passed == 0 else 0)
