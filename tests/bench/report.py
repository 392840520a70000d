"""report.py RAW_DIR OUT_DIR COMMIT NETNS: turns the measurements run.sh left
in RAW_DIR (JSON) into OUT_DIR/RESULTS.md (markdown tables: date, machine,
raw limits, ratios, latency, latency against per-perspective delays, memory,
CPU) and three plots: throughput.png (validations/s against concurrency),
latency.png (latency distribution) and delay.png (latency per delay profile
against the quorum-completing perspective's delay; only if RAW_DIR has
delay.jsonl).
Uses only the standard library and matplotlib (Debian python3-matplotlib)."""
import datetime
import json
import os
import platform
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RAW, OUT, COMMIT, NETNS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"

# probes per validation: 7 perspectives (primary + 6 remotes) all start at
# once (br.lua: primary_first = false), so every validation issues 7 checks.
PERSPECTIVES = 7
METHODS = {
    "dns": {"name": "acme-dns-01", "probe": "DNS TXT", "per_check": 1, "raw": "dns_txt_qps",
            "target": 0.5},
    "http": {"name": "acme-http-01", "probe": "HTTP GET", "per_check": 1, "raw": "http_keepalive_rps",
             "target": 0.3},
    # the CAA lookup asks every label at once: bench.test and its TLD test
    "caa": {"name": "CAA", "probe": "DNS CAA", "per_check": 2, "raw": "dns_caa_qps", "target": None},
}


def load(name):
    with open(os.path.join(RAW, name)) as f:
        return json.load(f)


def load_lines(name):
    with open(os.path.join(RAW, name)) as f:
        return [json.loads(l) for l in f if l.strip()]


def load_opt(name):
    """the JSON of RAW/name, or None when this run did not measure it"""
    path = os.path.join(RAW, name)
    return load(name) if os.path.exists(path) else None


def load_lines_opt(name):
    path = os.path.join(RAW, name)
    return load_lines(name) if os.path.exists(path) else []


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    return "?"


raw = load("raw.json")
sat = load_lines("saturate.jsonl")
lat = load_lines("latency.jsonl")
mem = load("memory.json")
# the decomposition parts of memory.lua, each from a fresh process (older runs lack them)
for part in ("bare", "query", "sleeping"):
    mem.update(load_opt("memory-%s.json" % part) or {})
ceil = {r["probe"]: r for r in load_lines_opt("ceiling.jsonl")}
bd = load("breakdown.json")
cg = load("callgrind.json")
remote = load("remote.json")


def best(method, fsync):
    rows = [r for r in sat if r["method"] == method and r["fsync"] == fsync]
    return max(rows, key=lambda r: r["validations_per_s"]) if rows else None


def ordinal(n):
    return "%d%s" % (n, "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th"))


def fmt(v, nd=0):
    return ("{:,.%df}" % nd).format(v)


md = []
w = md.append
w("# mpic benchmark results")
w("")
w("Produced by `tests/bench/run.sh` on %s UTC, commit `%s`." % (
    datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), COMMIT))
w("Machine: %s, %d CPUs, %s RAM, %s %s. Everything (servers, load generators, mpic) "
  "shares these CPUs on loopback." % (cpu_model(), os.cpu_count(), mem_total(), platform.system(),
                                       platform.release()))
w("")
la0, la1 = load("load_start.json")["load_start"], load("load_end.json")["load_end"]
w("Load average (1, 5, 15 min) at the start: %s; at the end: %s. Other processes running at the same time "
  "on this machine take CPU from the servers and from mpic alike; figures above a load of ~1.5 are noisy." % (la0, la1))
w("")
w("## Raw limit of the lab servers (same run)")
w("")
w("| server | load generator | what | rate |")
w("|---|---|---|---|")
w("| knot (1 UDP worker) | dnsperf, best of 3 settings | `_acme-challenge.bench.test TXT` | %s queries/s (%.2f%% lost) |"
  % (fmt(raw["dns_txt_qps"]), raw["dns_txt_lost_pct"]))
w("| knot | dnsperf | `bench.test CAA` | %s queries/s (%.2f%% lost) |" % (fmt(raw["dns_caa_qps"]), raw["dns_caa_lost_pct"]))
w("| knot | dnsperf | `www.bench.test A` | %s queries/s (%.2f%% lost) |" % (fmt(raw["dns_a_qps"]), raw["dns_a_lost_pct"]))
w("| nginx (1 worker) | wrk -c64, keep-alive | http-01 token URL | %s requests/s |" % fmt(raw["http_keepalive_rps"]))
w("| nginx | wrk -c64, `Connection: close` | http-01 token URL | %s requests/s |" % fmt(raw["http_close_rps"]))
w("")
w("## Validations at saturation (primary + 6 local perspectives, audit log on)")
w("")
w("Ratio = validations/s x probes per validation / raw probes/s. Every validation starts 7 checks "
  "at once (br.lua does not gate on the primary); checks cancelled after the verdict have already "
  "sent their probe. acme-http-01 on a name also makes 2 DNS queries (A, AAAA) per check; its ratio "
  "counts the HTTP GETs against wrk keep-alive (the brief's denominator) and, in brackets, against "
  "wrk with `Connection: close` (mpic opens a fresh connection per probe, as it must).")
w("")
w("| method | audit fsync | best validations/s (at N in flight) | probes/validation | ratio | target | met |")
w("|---|---|---|---|---|---|---|")
ratios = {}
for m, spec in METHODS.items():
    for fs in (True, False):
        b = best(m, fs)
        if not b:
            continue
        probes = PERSPECTIVES * spec["per_check"]
        ratio = b["validations_per_s"] * probes / raw[spec["raw"]]
        ratios[(m, fs)] = ratio
        extra = ""
        if m == "http":
            extra = " (%.2f)" % (b["validations_per_s"] * probes / raw["http_close_rps"])
        target = spec["target"]
        met = "" if target is None else ("yes" if ratio >= target else "**no**")
        pr = "%d %s" % (probes, spec["probe"]) + (" + 14 DNS" if m == "http" else "")
        w("| %s | %s | %s (N=%d) | %s | %.2f%s | %s | %s |" % (
            spec["name"], "on" if fs else "off", fmt(b["validations_per_s"]), b["arg"], pr, ratio, extra,
            "" if target is None else ">= %.1f" % target, met))
w("")
w("### Throughput against concurrency")
w("")
w("| method | fsync | " + " | ".join("N=%d" % n for n in sorted({r["arg"] for r in sat})) + " |")
w("|---|---|" + "---|" * len({r["arg"] for r in sat}))
for m, spec in METHODS.items():
    for fs in (True, False):
        rows = {r["arg"]: r for r in sat if r["method"] == m and r["fsync"] == fs}
        cells = []
        for n in sorted({r["arg"] for r in sat}):
            r = rows.get(n)
            cells.append("" if not r else "%s%s%s" % (
                fmt(r["validations_per_s"]), " (%d invalid)" % r["invalid"] if r["invalid"] else "",
                " (%s UDP drops)" % fmt(r["udp_rcvbuf_drops"]) if r.get("udp_rcvbuf_drops") else ""))
        w("| %s | %s | %s |" % (spec["name"], "on" if fs else "off", " | ".join(cells)))
w("")
if any(r.get("udp_rcvbuf_drops") for r in sat):
    w("*UDP drops*: datagrams the kernel dropped for a full receive buffer during the run (/proc/net/snmp "
      "RcvbufErrors, any socket). mpic asks 4 MiB for each of its resolver sockets; knot's socket keeps the "
      "default (net.core.rmem_default), so with hundreds of validations in flight a burst of queries can "
      "overflow it, and each lost query costs its check a retry timeout (2 s here).")
    w("")
bad = [r for r in sat + lat if r.get("invalid_reasons")]
if bad:
    w("Invalid validations (the lab always answers correctly, so each is a failure under load):")
    w("")
    for r in bad:
        for why, n in r["invalid_reasons"].items():
            w("- %s, %s, N=%d, fsync %s: %d x `%s`" % (METHODS[r["method"]]["name"], r["mode"], r["arg"],
                                                    "on" if r["fsync"] else "off", n, why))
    w("")
w("![throughput](throughput.png)")
w("")
w("## What bounds the local ratio: the probe path's ceiling")
w("")
if "dns" not in ceil:
    w("Not measured in this run (no raw/ceiling.jsonl; tests/bench/ceiling.lua produces it).")
else:
    w("tests/bench/ceiling.lua: probes through mpic's own runtime (tasks, c-ares or curl, libevent, the Lua "
      "bindings) with no orchestration at all: N tasks each loop one probe, %d ms measured after a %d ms "
      "warm-up, only successful answers counted. DNS: `_acme-challenge.bench.test TXT` on 7 resolvers (as a "
      "validation's 7 checks use). HTTP: the http-01 GET of the token URL, a fresh connection per request "
      "(as probes open), no DNS lookup. CPU = the mpic process's CPU time over the window (100%% = one core)."
      % (ceil["dns"]["duration_ms"], ceil["dns"]["warmup_ms"]))
    w("")
    w("| probe path | probes/s at N (mpic CPU) | best probes/s | CPU us per probe (best N) | raw server rate "
      "| ceiling ratio | validations/s if orchestration were free |")
    w("|---|---|---|---|---|---|---|")
    raw_of = {"dns": ("dns_txt_qps", "dnsperf TXT"), "http": ("http_close_rps", "wrk `Connection: close`")}
    free = {}
    for probe in ("dns", "http"):
        c = ceil.get(probe)
        if not c:
            w("| %s | not measured | | | | | |" % probe.upper())
            continue
        sweep = ", ".join("N=%d: %s (%.0f%%)%s" % (r["n"], fmt(r["ok_per_s"]), r["cpu_pct"],
                                                  " **%d failed**" % r["failed"] if r["failed"] else "")
                          for r in c["sweep"])
        bestrow = max(c["sweep"], key=lambda r: r["ok_per_s"])
        key, what = raw_of[probe]
        if probe == "dns":
            # 7 TXT queries per acme-dns-01 validation
            free[probe] = c["best_per_s"] / PERSPECTIVES
            note = "%s (7 queries)" % fmt(free[probe])
        elif "dns" in ceil:
            # acme-http-01: 7 GETs and 14 DNS queries (A, AAAA) per validation
            free[probe] = 1 / (PERSPECTIVES / c["best_per_s"] + 2 * PERSPECTIVES / ceil["dns"]["best_per_s"])
            note = "%s (7 GETs + 14 DNS queries)" % fmt(free[probe])
        else:
            note = "not measured"
        us = bestrow.get("cpu_us_per_probe")
        w("| %s | %s | %s (N=%d) | %s | %s/s (%s) | %.2f | %s |" % (
            "DNS TXT" if probe == "dns" else "HTTP GET", sweep, fmt(c["best_per_s"]), c["best_n"],
            "%.1f" % us if us else "-", fmt(raw[key]), what, c["best_per_s"] / raw[key], note))
    w("")
    fails = [(p, r) for p, c in ceil.items() for r in c["sweep"] if r.get("failures")]
    for p, r in fails:
        w("- %s, N=%d: failures %s" % (p, r["n"], ", ".join("%d x `%s`" % (n, k) for k, n in r["failures"].items())))
    if fails:
        w("")
    c_dns = ceil["dns"]["best_per_s"]
    cr = c_dns / raw["dns_txt_qps"]
    brow = max(ceil["dns"]["sweep"], key=lambda r: r["ok_per_s"])
    w("**Ceiling ratio (DNS): %.2f.** The acme-dns-01 ratio counts 7 queries per validation, so with orchestration "
      "free it would equal this ceiling ratio: %s the 0.5 target. At its best N the mpic process used %.0f%% of "
      "one core (%.1f us of CPU per query), while knot answered dnsperf %.1f times faster than mpic can ask."
      % (cr, "below" if cr < 0.5 else "at or above", brow["cpu_pct"], brow.get("cpu_us_per_probe") or 0,
         raw["dns_txt_qps"] / c_dns))
    w("")
    rows = []
    for m, n_probe in (("dns", 7 / c_dns),
                       ("http", (7 / ceil["http"]["best_per_s"] + 14 / c_dns) if "http" in ceil else None)):
        b = max((x for x in (best(m, True), best(m, False)) if x), key=lambda r: r["validations_per_s"], default=None)
        if not b or n_probe is None:
            continue
        v = b["validations_per_s"]
        per = 1e6 / v
        probe_us = n_probe * 1e6
        rows.append((METHODS[m]["name"], v, b["fsync"], per, probe_us))
    if rows:
        w("Where a validation's time on the loop goes, with v = best validations/s (above, either fsync setting) "
          "and c = the ceiling: per-validation time = 1/v, probe-path time = 7/c (acme-http-01: 7/c(HTTP) + "
          "14/c(DNS)), orchestration (request, selection, policy calls, 8 tasks, the checks' Lua, audit line) "
          "= the rest:")
        w("")
        w("| method | v (fsync) | per validation us | probe path us (share) | orchestration us (share) |")
        w("|---|---|---|---|---|")
        for name, v, fs, per, probe_us in rows:
            w("| %s | %s (%s) | %.1f | %.1f (%.0f%%) | %.1f (%.0f%%) |" % (
                name, fmt(v), "on" if fs else "off", per, probe_us, 100 * probe_us / per, per - probe_us,
                100 * (per - probe_us) / per))
        w("")
        # what the 0.5 target asks of the loop, given this probe path
        budget = 1e6 * PERSPECTIVES / (METHODS["dns"]["target"] * raw["dns_txt_qps"])
        probe_us = 7e6 / c_dns
        if probe_us < budget:
            w("The acme-dns-01 target (0.5) needs a validation every %.1f us on the loop; its 7 queries take %.1f us "
              "of that, leaving %.1f us for orchestration%s." % (
                  budget, probe_us, budget - probe_us,
                  "" if not rows or rows[0][0] != "acme-dns-01" else
                  " (%.1f us now, %.1f times too much)" % (rows[0][3] - probe_us,
                                                          (rows[0][3] - probe_us) / (budget - probe_us))))
        else:
            w("The acme-dns-01 target (0.5) needs a validation every %.1f us on the loop, but its 7 queries alone "
              "take %.1f us: not reachable on one loop even with orchestration free." % (budget, probe_us))
if md[-1] == "":
    md.pop()  # the next section starts with its own blank line
w("")
if "remote_vps" in remote:
    w("## Coordinator -> agents")
    w("")
    w("The service lab (tests/lab/test_service.sh): `mpic serve` and six `mpic agent` processes on "
      "loopback, mutual TLS, acme-dns-01 of svc.test with 6 remote perspectives, %d validations at "
      "%d in flight, posted over TLS by a client process; then the same validations in the client "
      "process with the six perspectives local (same resolvers, same concurrency). Everything shares "
      "the same 2 CPUs, so the agents' work is done on the same cores as the coordinator's."
      % (remote["total"], remote["concurrency"]))
    w("")
    w("| path | validations/s | p50 ms | p99 ms | agent requests on kept-alive / new connections |")
    w("|---|---|---|---|---|")
    w("| coordinator -> agents | %s | %d | %d | %s / %s |" % (fmt(remote["remote_vps"]), remote["p50_ms"],
      remote["p99_ms"], fmt(remote["connections_reused"]), fmt(remote["connections_new"])))
    w("| local, one process | %s | | | |" % fmt(remote["local_vps"]))
    w("")
    w("**Ratio coordinator -> agents / local: %.2f** (target >= 0.5: %s). %d failed requests, "
      "%d local validations not valid." % (remote["ratio"], "met" if remote["ratio"] >= 0.5 else "**not met**",
      remote["failed"], remote["local_not_valid"]))
    w("")
    rc, lc = remote.get("cpu_remote_ms_per_validation"), remote.get("cpu_local_ms_per_validation")
    w("### CPU per validation, by process")
    w("")
    if not rc or not lc or "total" not in rc or "local" not in lc:
        w("Not measured in this run (remote.json has no cpu_* keys; tests/lab/service/bench.lua writes them).")
    else:
        cores = os.cpu_count()
        tick = 1000 / remote.get("cpu_clk_tck", 100)
        w("utime + stime from /proc/PID/stat (%g ms ticks) of each process before and after each phase, divided by "
          "the %d validations: the coordinator, the %d agents it uses (summed), the client (the bench process, "
          "posting over TLS) and knot (%d processes: the owner's and the attacker's view). In the local phase the "
          "bench process is the local process, and the coordinator and agents idle."
          % (tick, remote["total"], remote.get("cpu_agents_counted", 0), remote.get("cpu_knot_counted", 0)))
        w("")
        w("| process | coordinator -> agents, CPU ms per validation | local, CPU ms per validation |")
        w("|---|---|---|")

        def ms(d, k):
            return "%.3f" % d[k] if k in d else "-"
        for k, name in (("coordinator", "coordinator (`mpic serve`)"), ("agents", "agents (sum)"),
                        ("client", "client (bench process)"), ("local", "local process (bench process)"),
                        ("knot", "knot")):
            w("| %s | %s | %s |" % (name, ms(rc, k) if k not in ("local",) else "-",
                                    ms(lc, k) if k not in ("coordinator", "agents", "client") else "-"))
        w("| **total** | **%.3f** | **%.3f** |" % (rc["total"], lc["total"]))
        w("")
        bound = cores * 1000 / rc["total"]
        busy = rc["total"] * remote["total"] / (remote["remote_seconds"] * 1000) if "remote_seconds" in remote else None
        w("On this machine's %d cores, CPU alone bounds coordinator -> agents at <= %d x 1000 / %.3f = **%s "
          "validations/s** (measured %s%s), against the local rate of %s: a ratio of at most **%.2f** here, "
          "however the work were scheduled, unless the CPU per validation falls. The coordinator's own loop "
          "(one core) alone allows <= 1000 / %.3f = %s/s. The local process is one loop too: <= 1000 / %.3f = "
          "%s/s on one core (measured %s)." % (
              cores, cores, rc["total"], fmt(bound), fmt(remote["remote_vps"]),
              "" if busy is None else ", with %.2f of the %d cores busy" % (busy, cores),
              fmt(remote["local_vps"]), bound / remote["local_vps"], rc.get("coordinator", 0),
              fmt(1000 / rc["coordinator"]) if rc.get("coordinator") else "-", lc["local"],
              fmt(1000 / lc["local"]) if lc["local"] else "-", fmt(remote["local_vps"])))
else:
    w("Coordinator -> agents: %s." % remote["status"])
w("")
w("## Latency at a fixed moderate rate (an eighth of the best fsync-on rate)")
w("")
w("| method | offered validations/s | p50 ms | p90 ms | p99 ms | max ms | samples | invalid |")
w("|---|---|---|---|---|---|---|---|")
for r in lat:
    L = r["latency_ms"]
    w("| %s | %d | %.2f | %.2f | %.2f | %.2f | %d | %d |" % (METHODS[r["method"]]["name"], r["offered_per_s"],
                                                    L["p50"], L["p90"], L["p99"], L["max"], L["n"], r["invalid"]))
w("")
w("![latency](latency.png)")
w("")
delay_rows = load_lines("delay.jsonl") if os.path.exists(os.path.join(RAW, "delay.jsonl")) else []
w("## Latency against per-perspective delays (early decision)")
w("")
if not delay_rows:
    w("Not measured in this run (no raw/delay.jsonl; tests/bench/latency_delay.sh produces it).")
    w("")
else:
    r0 = delay_rows[0]
    w("Each perspective resolves through its own UDP relay (tests/lab/dnsdelay.py) that adds a fixed delay "
      "to every answer from the lab's knot (`tc netem` is unavailable on this kernel). %d acme-dns-01 "
      "validations per profile, started at %d/s (open loop), primary + 6 remotes, quorum %d, audit fsync %s. "
      "The quorum-completing delay is the %s fastest remote's delay, or the primary's if larger "
      "(br.lua: the primary must pass as well). Latency is the whole `orchestrator.validate` call "
      "(audit line included); *decision* is `mpic_decision.elapsed_ms` (before the audit line); "
      "*quorum check* is the observed elapsed time of the check that completed the quorum. "
      "Target (issue 9): p50 within 10%% of the quorum-completing delay."
      % (r0["count"], r0["offered_per_s"], r0["quorum"], "on" if r0["fsync"] else "off", ordinal(r0["quorum"])))
    w("")
    w("| profile | primary; remotes (ms) | quorum completed by (delay) | p50 ms | p99 ms | max ms "
      "| p50 / delay | p99 / delay | decision p50 ms | quorum check p50 ms | invalid | p50 within 10% |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in delay_rows:
        d = r["delays"]
        remotes = sorted((v, k) for k, v in d.items() if k != r["primary"])
        qd = r["quorum_delay_ms"]
        L = r["latency_ms"]
        by = r["quorum_completed_by"]
        by = "any (all equal)" if len(by) == len(d) else ", ".join(by)
        within = abs(L["p50"] - qd) <= 0.1 * qd if qd > 0 else False
        w("| %s | %g; %s | %s (%g ms) | %.1f | %.1f | %.1f | %.3f | %.3f | %d | %d | %d | %s |" % (
            r["profile"], d[r["primary"]], "/".join("%g" % v for v, _ in remotes), by, qd, L["p50"], L["p99"],
            L["max"], r["ratio_p50"], r["ratio_p99"], r["decision_ms"]["p50"], r["quorum_check_ms"]["p50"],
            r["invalid"], "yes" if within else "**no**"))
    w("")
    path = [r["quorum_check_ms"]["p50"] - r["quorum_delay_ms"] for r in delay_rows]
    own = [r["latency_ms"]["p50"] - r["quorum_check_ms"]["p50"] for r in delay_rows]
    w("Where the p50 excess over the delay goes: the path itself (relay in Python + knot; the quorum check's "
      "observed elapsed minus the delay) %g to %g ms, mpic after that answer (decision, cancelling the "
      "rest, audit line; latency p50 minus quorum check p50) %.1f to %.1f ms. The check times are whole "
      "milliseconds, so both shares are +-1 ms. The relative excess is largest when the delay is "
      "smallest, since it is nearly constant in ms." % (min(path), max(path), min(own), max(own)))
    w("")
    w("Per perspective: p50 elapsed of its completed checks, and how many of its checks were cancelled "
      "once the verdict was certain (the slower perspectives' answers are never waited for):")
    w("")
    ids = [r0["primary"]] + sorted((k for k in r0["perspective_ms"] if k != r0["primary"]),
                                   key=lambda k: (r0["delays"].get(k, 0), k))
    w("| profile | " + " | ".join(ids) + " |")
    w("|---|" + "---|" * len(ids))
    for r in delay_rows:
        cells = []
        for i in ids:
            p = r["perspective_ms"].get(i)
            if not p:
                cells.append("")
                continue
            done = "%g ms: p50 %d" % (p["delay_ms"], p["p50"]) if p["completed"] else "%g ms: -" % p["delay_ms"]
            cells.append(done + (", %d cancelled" % p["cancelled"] if p["cancelled"] else ""))
        w("| %s | %s |" % (r["profile"], " | ".join(cells)))
    w("")
    bad = [r for r in delay_rows if r.get("invalid_reasons")]
    for r in bad:
        for why, n in r["invalid_reasons"].items():
            w("- %s: %d invalid x `%s`" % (r["profile"], n, why))
    if bad:
        w("")
    w("![latency against delay](delay.png)")
    w("")
w("## Memory per in-flight validation")
w("")
w("%s acme-dns-01 validations in flight, every perspective's resolver a UDP socket that never reads "
  "(%d live tasks; %d finished early)." % (fmt(mem["in_flight"]), mem["live_tasks_after"], mem["finished_early"]))
w("")
w("| measure | value |")
w("|---|---|")
w("| baseline RSS (100 in flight) | %s KB |" % fmt(mem["baseline_rss_kb"]))
w("| RSS with %s more in flight | %s KB (peak %s KB) |" % (fmt(mem["in_flight"]), fmt(mem["rss_kb"]), fmt(mem["hwm_kb"])))
w("| **RSS delta per in-flight validation** | **%.1f KB** (target <= 20 KB: %s) |" % (
    mem["kb_per_validation"], "met" if mem["kb_per_validation"] <= 20 else "**not met**"))
w("| RSS delta per validation after a full GC | %.1f KB |" % mem["kb_per_validation_after_gc"])
w("| Lua heap per validation (after a full GC) | %.1f KB (%.1f KB) |" % (
    mem["lua_heap_kb_per_validation"], mem["lua_heap_kb_per_validation_after_gc"]))
w("| tasks per validation | %.1f |" % ((mem["live_tasks_after"] - mem["live_tasks_before"]) / mem["in_flight"]))
w("| Lua heap of one bare task (a coroutine asleep) | %.2f KB |" % mem["bare_task_lua_heap_kb"])
w("")
w("### Where the KB go")
w("")
if not all(k in mem for k in ("bare_lua_heap_kb", "query_c_kb", "sleeping_lua_heap_kb")):
    w("Not measured in this run (no raw/memory-{bare,query,sleeping}.json; `memory.lua CONFIG N PART` "
      "produces them).")
    w("")
else:
    w("Each part is measured in a fresh process (100 of it as the baseline, then %s more; freed memory is "
      "reused by malloc, so a second measurement in one process would read low). Lua heap and RSS are read at "
      "the same instant; the C side is RSS delta - Lua heap delta (c-ares, mpic's C structures, libevent "
      "timers, and malloc's overhead on every allocation, the Lua heap's included)." % fmt(mem["bare_in_flight"]))
    w("")
    w("| part, per item | items per validation | Lua heap KB (live after GC) | RSS KB | C side KB |")
    w("|---|---|---|---|---|")
    for key, name, k in (("bare", "bare task (a coroutine asleep in mpic.sleep)", 8),
                         ("query", "task waiting in one resolver:query (blackhole)", 7),
                         ("sleeping", "validation whose 7 checks sleep instead of probing", 1)):
        w("| %s | %d | %.2f (%.2f) | %.2f | %.2f |" % (name, k, mem[key + "_lua_heap_kb"], mem[key + "_lua_heap_live_kb"],
                                                      mem[key + "_rss_kb"], mem[key + "_c_kb"]))
    w("| real validation (above) | 1 | %.2f (%.2f) | %.2f | %.2f |" % (
        mem["lua_heap_kb_per_validation"], mem["lua_heap_kb_per_validation_after_gc"], mem["kb_per_validation"],
        mem["kb_per_validation"] - mem["lua_heap_kb_per_validation"]))
    w("")
    # the Lua rows use the live heap (after a full GC: garbage depends on when the collector last ran);
    # the garbage of the real validation is a row of its own; the C side uses the heap read with the RSS
    total = mem["kb_per_validation"]
    heap, live = mem["lua_heap_kb_per_validation"], mem["lua_heap_kb_per_validation_after_gc"]
    co = 8 * mem["bare_lua_heap_live_kb"]
    stacks = live - mem["sleeping_lua_heap_live_kb"]
    state = mem["sleeping_lua_heap_live_kb"] - co
    c_side = total - heap
    c_q = 7 * (mem["query_c_kb"] - mem["bare_c_kb"])
    c_t = 8 * mem["bare_c_kb"]
    w("Per in-flight acme-dns-01 validation (%.1f KB of RSS):" % total)
    w("")
    w("| where | KB | share | how it is derived |")
    w("|---|---|---|---|")
    for name, kb, how in (
            ("8 coroutines (the validation's task and its 7 checks), Lua heap", co, "8 x a bare task's live Lua heap"),
            ("the extra stack of 7 checks waiting in a probe (check, challenge, probe, binding frames), Lua heap",
             stacks, "real validation's live Lua heap - a sleeping-checks validation's (%.2f KB per check)"
             % (stacks / 7)),
            ("validation state (request, selection, slots, policy state, closures), Lua heap", state,
             "sleeping-checks validation's live Lua heap - 8 coroutines"),
            ("Lua garbage not yet collected", heap - live, "real validation's Lua heap before - after a full GC"),
            ("C side: 7 DNS queries (c-ares query, mpic query, libevent timer, malloc overhead)", c_q,
             "7 x (RSS - Lua heap) of a task waiting in a query, minus a bare task's"),
            ("C side: 8 tasks (their C state, malloc overhead of their coroutines)", c_t,
             "8 x (RSS - Lua heap) of a bare task"),
            ("C side: the rest (malloc overhead of the validation state and stacks, fragmentation)",
             c_side - c_q - c_t, "real validation's RSS - Lua heap - the two rows above"),
    ):
        w("| %s | %.2f | %.0f%% | %s |" % (name, kb, 100 * kb / total, how))
    w("| **total** | **%.2f** | 100%% | RSS delta per validation |" % total)
    w("")

w("## CPU per validation")
w("")
ir = (cg["ir_hi"] - cg["ir_lo"]) / (cg["n_hi"] - cg["n_lo"])
w("callgrind, acme-dns-01, 10 in flight: (%s - %s instructions) / %d validations = **%s instructions per "
  "validation** (%s per check)." % (fmt(cg["ir_hi"]), fmt(cg["ir_lo"]), cg["n_hi"] - cg["n_lo"], fmt(ir), fmt(ir / 7)))
w("")
w("Piece by piece (tests/bench/breakdown.lua, CPU time, %d repetitions, one validation at a time):" % bd["n"])
w("")
w("| piece | us per call | calls per validation | us per validation |")
w("|---|---|---|---|")
dc = bd.get("decide_calls_per_validation", 7)
pieces = [
    ("whole validation, real probes", bd["validate_real_us"], 1),
    ("whole validation, checks answered at once (no I/O)", bd["validate_no_io_us"], 1),
    ("policy:select_owned (seed, stream, fresh registry list, sandbox)", bd["select_us"], 1),
    ("  of which the registry list (perspectives.list)", bd.get("registry_list_us", 0), 1),
    ("policy:decide_owned (fresh state, no copy, sandbox)", bd["decide_us"], dc),
    ("policy:decide on a caller's table (copied first)", bd.get("decide_copy_us", 0), 0),
    ("  of which plain_copy(state)", bd["plain_copy_us"], 0),
    ("audit line: json_encode", bd["json_encode_audit_us"], 1),
    ("audit line: audit writer, fsync off (written on the loop)", bd.get("audit_nofsync_us", 0), 1),
    ("audit line: audit writer, fsync on, one at a time (task waits)", bd.get("audit_fsync_us", 0), 0),
    ("audit line: audit writer, fsync on, 64 at once (one fdatasync)", bd.get("audit_fsync_64_us", 0), 0),
    ("util.append_line, fsync off (open/write/close)", bd["append_line_nofsync_us"], 0),
    ("util.append_line, fsync on (blocks the loop)", bd["append_line_fsync_us"], 0),
    ("request parsing (request.validate)", bd["request_validate_us"], 1),
    ("acme-dns-01 check, Lua only (answer given)", bd["check_lua_us"], 7),
    ("  of which base64url_decode of a hash (C)", bd["base64url_decode_us"], 0),
    ("DNS query through the binding, one at a time", bd["dns_query_us"], 7),
    ("task spawn + wait", bd["spawn_wait_us"], 8),
]
for name, us, k in pieces:
    w("| %s | %.1f | %s | %s |" % (name, us, ("%.1f" % k).rstrip("0").rstrip(".") if k else "-",
                                    "%.1f" % (us * k) if k else "-"))
w("")
w("decide() runs once per wakeup of the validation task (%.2f times per validation here, one at a time; "
  "under load the 7 answers usually arrive in one wakeup). Rows with `-` are for comparison: the "
  "orchestrator does not make those calls." % dc)
w("")


def annotate(path):
    """callgrind_annotate output -> {function: Ir}"""
    out, on = {}, False
    with open(path) as f:
        for line in f:
            if "file:function" in line:
                on = True
                continue
            if not on or not line.strip() or line.startswith("-"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 2:
                continue
            try:
                ir = int(parts[0].replace(",", ""))
            except ValueError:
                continue
            fn = line.split(")", 1)[1].strip() if ")" in line else parts[-1].strip()
            out[fn] = out.get(fn, 0) + ir
    return out


def diff_table(kind, title, skip_anonymous):
    lo = annotate(os.path.join(RAW, "callgrind-%s.%d.txt" % (kind, cg["n_lo"])))
    hi = annotate(os.path.join(RAW, "callgrind-%s.%d.txt" % (kind, cg["n_hi"])))
    n = cg["n_hi"] - cg["n_lo"]
    rows = []
    for fn, v in hi.items():
        d = (v - lo.get(fn, 0)) / n
        if skip_anonymous and ("???:0x" in fn or "below main" in fn):
            continue
        rows.append((d, fn))
    rows.sort(reverse=True)
    w(title)
    w("")
    w("| instructions per validation | share | function |")
    w("|---|---|---|")
    for d, fn in rows[:20]:
        w("| %s | %.1f%% | `%s` |" % (fmt(d), 100 * d / ir, fn))
    w("")


diff_table("self", "Top functions by own instructions per validation (callgrind, run of %d minus run of %d, "
           "divided; the Debian liblua5.4 has no symbols, so its functions appear as addresses):"
           % (cg["n_hi"], cg["n_lo"]), False)
diff_table("incl", "Top named functions, inclusive, per validation (same difference):", True)
with open(os.path.join(OUT, "RESULTS.md"), "w") as f:
    f.write("\n".join(md) + "\n")

# plots ---------------------------------------------------------------------------
fig, ax = plt.subplots(figsize=(8, 5))
for m, spec in METHODS.items():
    for fs, style in ((True, "-"), (False, "--")):
        rows = sorted((r for r in sat if r["method"] == m and r["fsync"] == fs), key=lambda r: r["arg"])
        if rows:
            ax.plot([r["arg"] for r in rows], [r["validations_per_s"] for r in rows], style, marker="o",
                    label="%s, fsync %s" % (spec["name"], "on" if fs else "off"))
ax.set_xscale("log", base=2)
ax.set_xlabel("validations in flight")
ax.set_ylabel("validations/s")
ax.set_title("mpic throughput, primary + 6 local perspectives (loopback)")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "throughput.png"), dpi=100)

fig, ax = plt.subplots(figsize=(8, 5))
for r in lat:
    path = os.path.join(RAW, "latency-%s.txt" % r["method"])
    if not os.path.exists(path):
        continue
    with open(path) as f:
        xs = sorted(float(l) for l in f if l.strip())
    if xs:
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.plot(xs, ys, label="%s at %d/s" % (METHODS[r["method"]]["name"], r["offered_per_s"]))
ax.set_xscale("log")
ax.set_xlabel("validation latency (ms)")
ax.set_ylabel("fraction of validations")
ax.set_title("mpic latency distribution (CDF), audit fsync on")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "latency.png"), dpi=100)

if delay_rows:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    samples, qds, names = [], [], []
    for r in delay_rows:
        path = os.path.join(RAW, "delay-%s.txt" % r["profile"])
        if not os.path.exists(path):
            continue
        with open(path) as f:
            xs = [float(l) for l in f if l.strip()]
        if xs:
            samples.append(xs)
            qds.append(r["quorum_delay_ms"])
            names.append(r["profile"])
    if samples:
        top = max(max(qds), max(max(xs) for xs in samples)) * 1.1
        line = [0, top]
        ax1.plot(line, line, "k-", lw=1, label="latency = quorum-completing delay")
        ax1.plot(line, [v * 1.1 for v in line], "k--", lw=1, label="+10% (target)")
        for xs, qd, name in zip(samples, qds, names):
            ax1.boxplot([xs], positions=[qd], widths=max(3, top * 0.03), manage_ticks=False,
                        showfliers=True, flierprops={"markersize": 3})
            ax1.annotate(name, (qd, max(xs)), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax1.set_xlim(0, top)
        ax1.set_ylim(0, top * 1.1)
        ax1.set_xlabel("quorum-completing perspective's delay (ms)")
        ax1.set_ylabel("validation latency (ms)")
        ax1.set_title("latency distribution per delay profile")
        ax1.grid(True, alpha=0.3)
        ax1.legend(loc="upper left", fontsize=8)
        ratios = [[v / qd for v in xs] for xs, qd in zip(samples, qds)]
        ax2.violinplot(ratios, showmedians=True, showextrema=True)
        ax2.axhline(1.0, color="k", lw=1, label="= delay")
        ax2.axhline(1.1, color="k", ls="--", lw=1, label="+10% (target)")
        ax2.set_xticks(range(1, len(names) + 1))
        ax2.set_xticklabels(["%s\n(%g ms)" % (n, q) for n, q in zip(names, qds)], fontsize=8)
        ax2.set_ylim(min(0.98, ax2.get_ylim()[0]), max(1.15, ax2.get_ylim()[1]))
        ax2.set_ylabel("latency / quorum-completing delay")
        ax2.set_title("latency relative to the delay")
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=8)
    fig.suptitle("mpic: primary + 6 remotes (quorum 4) behind delayed DNS paths")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "delay.png"), dpi=100)
