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
  return { dns = function(name, rtype)
    assert(rtype == "A")
    return answers[name]()
  end }
end
local function ad(v) return function() return { rcode = "NOERROR", ad = v, records = { { address = "192.0.2.1" } } } end end
local function fail(kind, partial) return function() return nil, kind, kind .. " detail", partial end end

case("dnssec_check_authenticated_signed_and_refused_bogus_pass", function()
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("servfail") })), true)
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = ad(true), ["bogus.example"] = fail("dnssec_bogus") })), true)
end)

case("dnssec_check_authenticated_denial_counts_as_authenticated", function()
  local nodata = fail("nodata", { rcode = "NOERROR", ad = true, records = {} })
  eq(dnssec_check.run(SPEC, probe({ ["signed.example"] = nodata, ["bogus.example"] = fail("servfail") })), true)
  local unsigned = fail("nodata", { rcode = "NOERROR", ad = false, records = {} })
  local good, why = dnssec_check.run(SPEC, probe({ ["signed.example"] = unsigned, ["bogus.example"] = fail("servfail") }))
  eq(good, nil); contains(why, "without AD=1")
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
  eq(good, true); eq(summary, nil)
end)

local function cfg(primary_agent)
  local p = { id = "p", rir = "ARIN", location = { lat = 1, lon = 1 } }
  if primary_agent then
    p.agent = { url = "https://agent.example", ca = "/ca", cert = "/c", key = "/k" }
  else
    p.resolvers = { "192.0.2.53" }
  end
  return { issuer = { caa_domains = { "ca.example" } }, primary = "p", perspectives = { p },
           primary_dnssec = { signed_name = "s.example", bogus_name = "b.example" } }
end

case("dnssec_check_config_needs_a_local_primary", function()
  local ok_cfg, errs = config.validate(cfg(false), "/tmp", "/tmp")
  eq(errs, nil); eq(ok_cfg.primary_dnssec.signed_name, "s.example")
  local bad
  bad, errs = config.validate(cfg(true), "/tmp", "/tmp")
  eq(bad, nil)
  contains(errs[1][2], "must be a local perspective")
end)
