-- mpic.dnssec_check against scripted answers: every way a resolver can fail
-- the start-up proof (the lab's real validating and non-validating resolvers
-- are in tests/lua/scenarios/dnssec_test.lua).
local T = require "mpic.testing"
local dnssec_check = require "mpic.dnssec_check"
local config = require "mpic.config"
local case, eq, contains = T.case, T.eq, T.contains

local SPEC = { signed_name = "signed.example", bogus_name = "bogus.example" }

-- answers: name -> function() returning what probe.dns returns
local function probe(answers)
  return {
    dns = function(name, rtype)
      assert(rtype == "A")
      return answers[name]()
    end,
  }
end
local function ad(v)
  return function() return { rcode = "NOERROR", ad = v, records = { { address = "192.0.2.1" } } } end
end
local function fail(kind, partial)
  return function() return nil, kind, kind .. " detail", partial end
end

case("dnssec_check_authenticated_signed_and_refused_bogus_pass", function()
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("servfail") })), true)
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("dnssec_bogus") })), true)
end)

case("dnssec_check_authenticated_denial_counts_as_authenticated", function()
  local nodata = fail("nodata", { rcode = "NOERROR", ad = true, records = {} })
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = nodata, ["bogus.example"] = fail("servfail") })), true)
  local unsigned = fail("nodata", { rcode = "NOERROR", ad = false, records = {} })
  local good, why =
    dnssec_check.run(SPEC, probe({ ["signed.example"] = unsigned, ["bogus.example"] = fail("servfail") }))
  eq(good, nil)
  contains(why, "without AD=1")
end)

case("dnssec_check_refuses_each_failure", function()
  local cases = {
    { ad(false), fail("servfail"), "without AD=1" },
    { fail("timeout"), fail("servfail"), "did not resolve" },
    { fail("servfail"), fail("servfail"), "did not resolve" },
    { ad(true), ad(false), "answered the bogus name" },
    { ad(true), fail("timeout"), "gave timeout" },
    { ad(true), fail("nxdomain"), "gave nxdomain" },
  }
  for i, c in ipairs(cases) do
    local good, why = dnssec_check.run(SPEC, probe({ ["signed.example"] = c[1], ["bogus.example"] = c[2] }))
    eq(good, nil, "case " .. i)
    contains(why, c[3])
  end
end)

case("dnssec_check_absent_is_not_run", function()
  local good, summary = dnssec_check.check({ primary = "p" })
  eq(good, true)
  eq(summary, nil)
end)

local function cfg(primary_agent)
  local p = { id = "p", rir = "ARIN", location = { lat = 1, lon = 1 } }
  if primary_agent then
    p.agent = { url = "https://agent.example", ca = "/ca", cert = "/c", key = "/k" }
  else
    p.resolvers = { "192.0.2.53" }
  end
  return {
    issuer = { caa_domains = { "ca.example" } },
    primary = "p",
    perspectives = { p },
    primary_dnssec = { signed_name = "s.example", bogus_name = "b.example" },
  }
end

case("dnssec_check_config_needs_a_local_primary", function()
  local ok_cfg, errs = config.validate(cfg(false), "/tmp", "/tmp")
  eq(errs, nil)
  eq(ok_cfg.primary_dnssec.signed_name, "s.example")
  local bad
  bad, errs = config.validate(cfg(true), "/tmp", "/tmp")
  eq(bad, nil)
  contains(errs[1][2], "must be a local perspective")
end)

-- Mandatory in production (SC-085): a primary without the lab switch -------------

local function prod(t)
  local c = {
    primary = "p",
    network = { allow_reserved_ips = false },
    perspectives = { { id = "p", resolvers = { "192.0.2.53:53" } } },
    audit = { path = os.tmpname(), fsync = false },
  }
  for k, v in pairs(t or {}) do
    c[k] = v
  end
  return c
end

case("dnssec_check_is_required_with_a_primary_and_no_lab_switch", function()
  eq(dnssec_check.required(prod()), true)
  eq(dnssec_check.required(prod { network = { allow_reserved_ips = true } }), false)
  eq(dnssec_check.required(prod { primary = false }), true) -- any primary value names one
  local c = prod()
  c.primary = nil
  eq(dnssec_check.required(c), false)
end)

case("dnssec_check_startup_refuses_production_without_primary_dnssec", function()
  local good, why = dnssec_check.startup(prod())
  eq(good, nil)
  contains(why, "DNSSEC validation at the primary perspective is mandatory (SC-085, BR 4.2.2.2)")
  contains(why, "add primary_dnssec: {signed_name: NAME, bogus_name: NAME")
  -- the lab switch: no proof required, and the message says so
  good, why = dnssec_check.startup(prod { network = { allow_reserved_ips = true } })
  eq(good, true)
  contains(why, "lab switch network.allow_reserved_ips is on")
  local c = prod()
  c.primary = nil
  good, why = dnssec_check.startup(c)
  eq(good, true)
  contains(why, "no primary perspective")
end)

local function audit_of(path)
  local f = assert(io.open(path))
  local out = {}
  for line in f:lines() do
    out[#out + 1] = assert(require("mpic").json.decode(line))
  end
  f:close()
  return out
end

case("dnssec_check_prove_writes_every_outcome_to_the_audit_log", function()
  local c = prod { primary_dnssec = SPEC }
  local good =
    dnssec_check.prove(c, "start", probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("servfail") }))
  eq(good, true)
  local bad, why =
    dnssec_check.prove(c, "periodic", probe({ ["signed.example"] = ad(false), ["bogus.example"] = fail("servfail") }))
  eq(bad, nil)
  contains(why, "without AD=1")
  local lines = audit_of(c.audit.path)
  os.remove(c.audit.path)
  eq(#lines, 2)
  eq(lines[1].event, "primary_dnssec_proof")
  eq(lines[1].phase, "start")
  eq(lines[1].passed, true)
  eq(lines[1].primary, "p")
  eq(lines[1].resolvers, { "192.0.2.53:53" })
  eq(lines[1].signed_name, "signed.example")
  eq(lines[2].phase, "periodic")
  eq(lines[2].passed, false)
  contains(lines[2].reason, "without AD=1")
  -- no proof configured (lab): nothing written
  local lab = prod { network = { allow_reserved_ips = true } }
  eq((dnssec_check.prove(lab, "start")), true)
  local f = io.open(lab.audit.path)
  eq(f:read("a"), "")
  f:close()
  os.remove(lab.audit.path)
end)

case("dnssec_check_prove_without_its_audit_line_is_refused", function()
  local c = prod { primary_dnssec = SPEC, audit = { path = "/nonexistent-dir/audit.jsonl", fsync = false } }
  local good, why =
    dnssec_check.prove(c, "start", probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("servfail") }))
  eq(good, nil)
  contains(why, "its audit line could not be written")
end)

case("dnssec_check_prove_is_bounded_by_its_budget", function()
  local mpic = require "mpic"
  local c = prod { primary_dnssec = SPEC }
  local slow = {
    dns = function()
      mpic.sleep(5000)
      return nil, "timeout", "slow"
    end,
  }
  local t0 = mpic.now()
  local good, why = dnssec_check.prove(c, "periodic", slow, 100)
  T.ok(mpic.now() - t0 < 2000, "bounded")
  eq(good, nil)
  contains(why, "did not finish within 100 ms")
  local lines = audit_of(c.audit.path)
  os.remove(c.audit.path)
  eq(lines[1].passed, false)
end)
