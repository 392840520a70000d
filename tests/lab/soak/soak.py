#!/usr/bin/env python3
"""soak.py: the clients of tests/lab/test_soak.sh (which starts the lab and
exports SOAK_*). Python's standard library only.

1. Every case once through `mpic validate` (a fresh process each), with the
   local and the agent configuration: the reference verdicts, which must be
   what the lab was built for (good cases valid, hostile ones not).
2. The soak: several clients per coordinator send the cases interleaved
   (each client its own seeded order) for SOAK_SECONDS to both long-lived
   `mpic serve`s. Every answer must carry the reference verdict and none may
   be 5xx; /healthz must say healthy and every mpic_perspective_up must be 1
   throughout; no health change may be logged; memory must stay bounded.
3. Real perspective failures: a resolver that stops answering, a killed
   agent, the shared resolver stopped: health, selection, 503 and recovery.
Prints one "ok"/"FAIL" line per check; exits 1 on any failure.
"""
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

E = os.environ
WORK, MPIC, SECONDS = E["SOAK_WORK"], E["SOAK_MPIC"], float(E["SOAK_SECONDS"])
HASH, TOKEN, KA = E["SOAK_HASH"], E["SOAK_TOKEN"], E["SOAK_KA"]
SERVERS = {"local": E["SOAK_LOCAL"], "remote": E["SOAK_REMOTE"]}
PIDS = {"local": int(E["SOAK_LOCAL_PID"]), "remote": int(E["SOAK_REMOTE_PID"])}
# the coordinators' configurations, and the same for `mpic validate` (other audit logs)
SERVE_CONFIG = {"local": WORK + "/local.yaml", "remote": WORK + "/remote.yaml"}
CONFIG = {"local": WORK + "/local-cli.yaml", "remote": WORK + "/remote-cli.yaml"}
ASAN = "ASAN_OPTIONS" in E

failures = []


def check(name, cond, detail=""):
    if cond:
        print("ok   " + name, flush=True)
    else:
        failures.append(name)
        print("FAIL %s %s" % (name, detail), flush=True)


def dcv(target, method, **params):
    params["validation_method"] = method
    return {"check_type": "dcv", "domain_or_ip_target": target, "dcv_check_parameters": params}


WRONG_HASH = "A" * 43
# name -> (request, good)
CASES = {
    "dns01-ok": (dcv("dns.soak.test", "acme-dns-01", key_authorization_hash=HASH), True),
    "dns01-wrong-value": (dcv("dns.soak.test", "acme-dns-01", key_authorization_hash=WRONG_HASH), False),
    "dns01-nxdomain": (dcv("nx.soak.test", "acme-dns-01", key_authorization_hash=HASH), False),
    "dns01-servfail": (dcv("x.sf.soak.test", "acme-dns-01", key_authorization_hash=HASH), False),
    "dns01-dropped": (dcv("x.drop.soak.test", "acme-dns-01", key_authorization_hash=HASH), False),
    "http01-ok": (dcv("web.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), True),
    "http01-404": (dcv("web.soak.test", "acme-http-01", token=TOKEN + "x", key_authorization=KA + "x"), False),
    "http01-refused": (dcv("refused.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "http01-drip": (dcv("drip.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "http01-hang": (dcv("hang.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "http01-endless-headers": (dcv("headers.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "http01-redirect-loop": (dcv("loop.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "http01-huge-body": (dcv("huge.soak.test", "acme-http-01", token=TOKEN, key_authorization=KA), False),
    "alpn-ok": (dcv("alpn.soak.test", "acme-tls-alpn-01", key_authorization_hash=HASH), True),
    "alpn-wrong-cert": (dcv("badtls.soak.test", "acme-tls-alpn-01", key_authorization_hash=HASH), False),
    "alpn-hang": (dcv("tlshang.soak.test", "acme-tls-alpn-01", key_authorization_hash=HASH), False),
    "caa-ok": ({"check_type": "caa", "domain_or_ip_target": "dns.soak.test"}, True),
    "caa-forbidden": ({"check_type": "caa", "domain_or_ip_target": "forbid.soak.test"}, False),
    "caa-servfail": ({"check_type": "caa", "domain_or_ip_target": "x.sf.soak.test"}, False),
}
GOOD = [n for n, (_, g) in CASES.items() if g]


def post(base, body, timeout=30):
    u = urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("POST", "/mpic", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return r.status, doc, dict(r.getheaders())
    finally:
        c.close()


def get(base, path, timeout=10):
    u = urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"VmRSS:\s*(\d+)", f.read())
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def perspective_up(metrics):
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^mpic_perspective_up\{perspective="([^"]+)"\} (\S+)$', metrics, re.M)}


# 1. reference verdicts, one fresh process per case -------------------------
def validate_once(args):
    which, name = args
    req = CASES[name][0]
    fd, path = tempfile.mkstemp(suffix=".json", dir=WORK)
    with os.fdopen(fd, "w") as f:
        json.dump(req, f)
    try:
        p = subprocess.run([MPIC, "validate", "--config", CONFIG[which], "--request", path, "--json"],
                           capture_output=True, text=True, timeout=60)
        doc = json.loads(p.stdout)
        errs = [e.get("error_message") for q in doc.get("perspectives", [])
                for e in (q["check_response"].get("errors") or [])]
        return which, name, doc.get("is_valid"), "%d %s" % (p.returncode, errs[:2])
    except (subprocess.TimeoutExpired, ValueError) as e:
        return which, name, None, repr(e)


reference = {}
with ThreadPoolExecutor(max_workers=6) as ex:
    for which, name, valid, rc in ex.map(validate_once, [(w, n) for w in SERVERS for n in CASES]):
        reference[(which, name)] = valid
        check("validate_%s_%s_is_%s" % (which, name, "valid" if CASES[name][1] else "not_valid"),
              valid is CASES[name][1], "(is_valid %r, exit %r)" % (valid, rc))

# 2. the soak ---------------------------------------------------------------------
stop_at = time.time() + SECONDS
lock = threading.Lock()
stats = {w: {"answers": 0, "good_valid": 0, "hostile_invalid": 0, "wrong": [], "status5xx": [], "errors": []}
         for w in SERVERS}
monitor = {w: {"healthz_bad": [], "up_bad": [], "rss": [], "fds": []} for w in SERVERS}
AUDIT = {"local": WORK + "/local-audit.jsonl", "remote": WORK + "/remote-audit.jsonl"}


def client(which, seed):
    rng = random.Random(seed)
    names = list(CASES) + GOOD * 2  # good validations are the common case
    while time.time() < stop_at:
        rng.shuffle(names)
        for name in names:
            if time.time() >= stop_at:
                return
            try:
                status, doc, _ = post(SERVERS[which], CASES[name][0])
            except Exception as e:  # noqa: BLE001 - any failure to answer is recorded
                with lock:
                    stats[which]["errors"].append("%s: %r" % (name, e))
                continue
            with lock:
                s = stats[which]
                s["answers"] += 1
                if status >= 500:
                    s["status5xx"].append("%s: %d %s" % (name, status, json.dumps(doc)[:300]))
                elif status != 200 or not isinstance(doc, dict) or doc.get("is_valid") is not reference[(which, name)]:
                    s["wrong"].append("%s: %d %s" % (name, status, json.dumps(doc)[:300]))
                elif CASES[name][1]:
                    s["good_valid"] += 1
                else:
                    s["hostile_invalid"] += 1


def watch(which):
    while time.time() < stop_at:
        m = monitor[which]
        try:
            st, body = get(SERVERS[which], "/healthz")
            if st != 200 or json.loads(body).get("status") != "healthy":
                m["healthz_bad"].append("%d %s" % (st, body[:200]))
            st, body = get(SERVERS[which], "/metrics")
            up = perspective_up(body)
            if st != 200 or any(v != 1 for v in up.values()):
                m["up_bad"].append(repr(up))
        except Exception as e:  # noqa: BLE001
            m["healthz_bad"].append(repr(e))
        m["rss"].append((time.time(), rss_kb(PIDS[which])))
        m["fds"].append(open_fds(PIDS[which]))
        time.sleep(1)


t0 = time.time()
threads = [threading.Thread(target=client, args=(w, 1000 * i + k)) for i, w in enumerate(SERVERS) for k in range(4)]
threads += [threading.Thread(target=watch, args=(w,)) for w in SERVERS]
for t in threads:
    t.start()
for t in threads:
    t.join(SECONDS + 120)
elapsed = time.time() - t0

for w in SERVERS:
    s, m = stats[w], monitor[w]
    print("%s: %d answers in %.0f s (%.1f/s): %d good valid, %d hostile not valid, %d wrong, %d 5xx, %d errors"
          % (w, s["answers"], elapsed, s["answers"] / elapsed, s["good_valid"], s["hostile_invalid"],
             len(s["wrong"]), len(s["status5xx"]), len(s["errors"])))
    check("soak_%s_every_answer_has_the_reference_verdict" % w, not s["wrong"], s["wrong"][:3])
    check("soak_%s_no_5xx" % w, not s["status5xx"], s["status5xx"][:3])
    check("soak_%s_every_request_answered" % w, not s["errors"], s["errors"][:3])
    check("soak_%s_good_and_hostile_both_served" % w, s["good_valid"] >= 10 and s["hostile_invalid"] >= 10)
    check("soak_%s_healthz_stays_healthy" % w, not m["healthz_bad"], m["healthz_bad"][:3])
    check("soak_%s_every_perspective_stays_up" % w, not m["up_bad"], m["up_bad"][:3])
    with open("%s/serve-%s.log" % (WORK, w)) as f:
        changes = [line for line in f if "is unhealthy" in line]
    check("soak_%s_no_health_change_logged" % w, not changes, changes[:3])
    # connections: the open descriptors of the coordinator must not pile up
    fds = [f for f in m["fds"] if f > 0]
    third_f = max(1, len(fds) // 3)
    f_first, f_last = max(fds[:third_f] or [0]), max(fds[-third_f:] or [0])
    print("%s: open descriptors at most %d in the first third, %d in the last" % (w, f_first, f_last))
    check("soak_%s_connections_bounded" % w, 0 < f_last <= f_first + 64, "(%d then %d)" % (f_first, f_last))
    # logs: the service log says nothing per request, and each audit line is bounded
    log_size = os.path.getsize("%s/serve-%s.log" % (WORK, w))
    with open(AUDIT[w], "rb") as f:
        lines = f.read().split(b"\n")
    longest = max(len(line) for line in lines)
    print("%s: service log %d bytes; audit %d lines, the longest %d bytes" % (w, log_size, len(lines) - 1, longest))
    check("soak_%s_service_log_bounded" % w, log_size < 64 * 1024, "(%d bytes)" % log_size)
    check("soak_%s_audit_lines_bounded" % w, 0 < longest < 64 * 1024 and len(lines) - 1 >= s["answers"],
          "(%d bytes, %d lines for %d answers)" % (longest, len(lines) - 1, s["answers"]))
    rss = [r for _, r in m["rss"] if r > 0]
    third = max(1, len(rss) // 3)
    first, last = max(rss[:third] or [0]), max(rss[-third:] or [0])
    print("%s: RSS %d MB at most in the first third, %d MB at most in the last third, peak %d MB"
          % (w, first // 1024, last // 1024, max(rss or [0]) // 1024))
    if ASAN:
        # AddressSanitizer's quarantine holds freed memory: RSS says nothing
        # about leaks there (its leak checker does)
        print("memory bound not applied under AddressSanitizer")
    else:
        check("soak_%s_memory_bounded" % w, last <= first * 1.5 + 32 * 1024 and max(rss or [0]) < 512 * 1024,
              "(%d KB then %d KB)" % (first, last))


# 3. real perspective failures ------------------------------------------------------
def health(which):
    try:
        st, body = get(SERVERS[which], "/healthz")
        return st, json.loads(body)
    except Exception as e:  # noqa: BLE001
        return 0, {"error": repr(e)}


def wait_for(pred, limit=15.0):
    """Poll pred() every 0.2 s for at most limit seconds: (value, seconds)."""
    t = time.time()
    while True:
        v = pred()
        if v or time.time() - t > limit:
            return v, time.time() - t
        time.sleep(0.2)


def out_ids(doc):
    return sorted(u.get("perspective_code") for u in doc.get("unhealthy", []))


def good_validation_without(which, pid_out):
    status, doc, _ = post(SERVERS[which], CASES["dns01-ok"][0])
    used = [p["perspective_code"] for p in (doc or {}).get("perspectives", [])]
    return status == 200 and doc.get("is_valid") is True and pid_out not in used, (status, used, (doc or {}).get("error"))


def perspective_metric(which, pid):
    _, body = get(SERVERS[which], "/metrics")
    return perspective_up(body).get(pid)


# a. gru's resolver stops answering: the local perspective's canary, and the
# agent's own canary behind its /healthz
relay = int(E["SOAK_RELAY_PID"])
os.kill(relay, signal.SIGSTOP)
for w in SERVERS:
    v, secs = wait_for(lambda: health(w)[1].get("status") == "degraded" and out_ids(health(w)[1]) == ["gru"])
    check("resolver_down_%s_gru_unhealthy_in_%.1f_s" % (w, secs), v, health(w))
    check("resolver_down_%s_metrics_gru_down" % w, perspective_metric(w, "gru") == 0)
    okv, info = good_validation_without(w, "gru")
    check("resolver_down_%s_selection_skips_gru_and_validates" % w, okv, info)
os.kill(relay, signal.SIGCONT)
for w in SERVERS:
    v, secs = wait_for(lambda: health(w)[1].get("status") == "healthy")
    check("resolver_back_%s_healthy_in_%.1f_s" % (w, secs), v, health(w))
with open(WORK + "/serve-local.log") as f:
    log = f.read()
check("resolver_down_logged_with_its_reason", re.search(r"perspective gru is unhealthy: .*canary canary\.soak\.test", log),
      log[-500:])

# b. an agent dies, then comes back
os.kill(int(E["SOAK_AGENT_SYD_PID"]), signal.SIGKILL)
v, secs = wait_for(lambda: out_ids(health("remote")[1]) == ["syd"])
check("agent_killed_unhealthy_in_%.1f_s" % secs, v, health("remote"))
okv, info = good_validation_without("remote", "syd")
check("agent_killed_selection_skips_it_and_validates", okv, info)
with open(WORK + "/agent-syd.log", "a") as logf:
    agent = subprocess.Popen(E["SOAK_RESTART_SYD"].split(), stdout=logf, stderr=subprocess.STDOUT)
with open(WORK + "/agent-syd.pid", "w") as f:
    f.write("%d\n" % agent.pid)  # test_soak.sh's cleanup stops it
v, secs = wait_for(lambda: health("remote")[1].get("status") == "healthy")
check("agent_restarted_healthy_in_%.1f_s" % secs, v, health("remote"))

# c. the shared resolver stops: every perspective is out, 503 with Retry-After
unbound = int(E["SOAK_UNBOUND_PID"])
os.kill(unbound, signal.SIGSTOP)
try:
    for w in SERVERS:
        v, secs = wait_for(lambda: health(w)[0] == 503, 20)
        st, doc = health(w)
        check("all_down_%s_healthz_unavailable_in_%.1f_s" % (w, secs), v and doc.get("status") == "unavailable", doc)
        status, body, headers = post(SERVERS[w], CASES["dns01-ok"][0])
        check("all_down_%s_validation_is_503_with_retry_after" % w,
              status == 503 and headers.get("Retry-After", "").isdigit()
              and len((body or {}).get("unavailable_perspectives", [])) >= 2, (status, body, headers))
finally:
    os.kill(unbound, signal.SIGCONT)
for w in SERVERS:
    v, secs = wait_for(lambda: health(w)[1].get("status") == "healthy", 20)
    check("all_back_%s_healthy_in_%.1f_s" % (w, secs), v, health(w))
    status, doc, _ = post(SERVERS[w], CASES["dns01-ok"][0])
    check("all_back_%s_validates" % w, status == 200 and doc.get("is_valid") is True, (status, doc))

# d. the evidence: both logs, still being written, verify whole (the chain,
# every agent's signature, a seal after every line)
for w in SERVERS:
    p = subprocess.run([MPIC, "audit", "verify", "--open", AUDIT[w], "--config", SERVE_CONFIG[w]],
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"ok: (\d+) lines, (\d+) checkpoints, (\d+) signed results", p.stdout)
    print("%s: audit verify: %s" % (w, (p.stdout + p.stderr).strip().splitlines()[-1:]))
    check("evidence_%s_log_verifies" % w, p.returncode == 0 and m and int(m.group(2)) > 0 and int(m.group(3)) > 0,
          (p.returncode, p.stdout[-400:], p.stderr[-400:]))

print("%d failed" % len(failures) if failures else "all passed")
sys.exit(1 if failures else 0)
