-- DNS-over-TLS and DNS-over-HTTPS give the same answers as UDP from the same
-- unbound (tests/lab/test_dnsenc.sh starts it and exports MPIC_LAB_ENC_*):
-- records, rcode, flags, error kinds and details for A/TXT/CAA, NXDOMAIN and
-- SERVFAIL; only the `server` differs.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local case, eq, ok = T.case, T.eq, T.ok
local env = require("dnsenc_lab").env

local function resolver(server, extra)
  local cfg = {
    servers = { env(server) },
    timeout_ms = 2000,
    tries = 2,
    lifetime_ms = 8000,
    ca_file = env("MPIC_LAB_ENC_CA"),
  }
  for k, v in pairs(extra or {}) do
    cfg[k] = v
  end
  return dns.resolver(cfg)
end

-- Records without their TTLs (compared apart, within a few seconds): unbound
-- answers from its cache, counting the TTL down, so two queries a second
-- apart may see 300 and 299.
local function coarse_ttls(records)
  if type(records) ~= "table" then return records end
  local out = {}
  for i, rr in ipairs(records) do
    local c = {}
    for k, v in pairs(rr) do
      c[k] = v
    end
    c.ttl = nil
    out[i] = c
  end
  return out
end

-- the comparable part of an outcome (elapsed_ms and server aside)
local function outcome(r, name, rtype)
  local res, kind, detail, partial = r:query(name, rtype)
  local t = res or partial
  local view = { kind = kind, detail = detail }
  if t then
    view.rcode, view.ad, view.tc, view.aa = t.rcode, t.ad, t.tc, t.aa
    view.records, view.cname_chain, view.ede = coarse_ttls(t.records), t.cname_chain, t.ede
    view.name, view.type = t.name, t.type
  end
  return view, t
end

-- the resolvers live as long as the suite (the cases run after this file)
local udp = resolver("MPIC_LAB_ENC_UDP")
local transports = {
  { "DoT", resolver("MPIC_LAB_ENC_DOT"), env("MPIC_LAB_ENC_DOT") },
  { "DoT by address", resolver("MPIC_LAB_ENC_DOT_IP"), env("MPIC_LAB_ENC_DOT_IP") },
  { "DoH", resolver("MPIC_LAB_ENC_DOH"), env("MPIC_LAB_ENC_DOH") },
  { "DoH by address", resolver("MPIC_LAB_ENC_DOH_IP"), env("MPIC_LAB_ENC_DOH_IP") },
}

local questions = {
  { "victim.test", "A" },
  { "victim.test", "TXT" },
  { "victim.test", "CAA" },
  { "crit.victim.test", "CAA" },
  { "_acme-challenge.victim.test", "TXT" },
  { "multi.victim.test", "TXT" },
  { "c1.victim.test", "A" },
  { "victim.test", "AAAA" },
  { "nope.victim.test", "A" },
  { "nope.victim.test", "CAA" },
  { "victim.test", "PTR" },
}

for _, tr in ipairs(transports) do
  local label, r, entry = tr[1], tr[2], tr[3]
  case("dnsenc_same_answers_as_udp_" .. label, function()
    for _, qn in ipairs(questions) do
      local want, wt = outcome(udp, qn[1], qn[2])
      local got, t = outcome(r, qn[1], qn[2])
      eq(got, want, label .. " " .. qn[1] .. " " .. qn[2])
      for i, rr in ipairs(wt and wt.records or {}) do
        local d = math.abs(rr.ttl - t.records[i].ttl)
        T.ok(d <= 5, label .. " " .. qn[1] .. " " .. qn[2] .. ": TTLs " .. rr.ttl .. " and " .. t.records[i].ttl)
      end
      eq(t.server, entry, "the answering server is the entry as configured")
    end
    -- the answers are real ones, not two equal failures
    local res = assert(r:query("victim.test", "TXT"))
    eq(res.records[1].value, "v=legit")
    local cres = assert(r:query("victim.test", "CAA"))
    local issue
    for _, rr in ipairs(cres.records) do
      if rr.tag == "issue" then issue = rr.value end
    end
    eq(issue, "ca.example")
    local nx, kind = r:query("nope.victim.test", "A")
    eq(nx and nx.rcode, "NXDOMAIN", kind)
  end)
end

case("dnsenc_servfail_like_udp", function()
  local want = outcome(udp, "www.dead.test", "A")
  eq(want.kind, "servfail")
  for _, tr in ipairs(transports) do
    local got, t = outcome(tr[2], "www.dead.test", "A")
    eq(got, want, tr[1])
    ok(t.server == tr[3], tr[1])
  end
end)

case("dnsenc_refused_like_udp", function()
  -- every name outside the lab zones is REFUSED by the lab unbound
  local want = outcome(udp, "example.com", "A")
  eq(want.kind, "refused")
  for _, tr in ipairs(transports) do
    eq(outcome(tr[2], "example.com", "A"), want, tr[1])
  end
end)

case("dnsenc_upper_case_question_matches", function()
  for _, tr in ipairs(transports) do
    local res, kind, detail = tr[2]:query("VICTIM.Test", "A")
    ok(res, tr[1] .. ": " .. tostring(kind) .. " " .. tostring(detail))
    eq(res.records[1].address, "192.0.2.10")
  end
end)

case("dnsenc_answers_close", function()
  for _, tr in ipairs(transports) do
    tr[2]:close()
  end
  udp:close()
end)
