-- The DNSSEC-Insecure proof behind CAA's allow_lookup_failure (mpic.dnssec_insecure):
-- every branch of the climb against a scripted resolver, the RFC 5155 hash, and
-- the CAA checker reporting the proof (or its absence) in details.
local T = require "mpic.testing"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local F = dofile(here .. "/../challenge/fake.lua")
local insecure = require "mpic.dnssec_insecure"
local checker = require "mpic.challenge.caa"
local target = require "mpic.target"
local dns = require "mpic.core.dns"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

-- A resolver answering DS queries from script[name]: a result table, or
-- {fail = kind}. Names not in the script answer an unauthenticated NODATA.
local function scripted(script)
  local asked = {}
  local function q(name, rtype)
    eq(rtype, "DS")
    asked[#asked + 1] = name
    local s = script[name]
    if s == nil then return { rcode = "NOERROR", ad = false, records = {}, answers = {}, authority = {} } end
    if s.fail then return nil, s.fail, s.fail .. " looking up DS for " .. name end
    return s
  end
  return q, asked
end

local function set(...)
  local t = {}
  for _, k in ipairs({ ... }) do t[k] = true end
  return t
end

local function nodata(ad, authority)
  return { rcode = "NOERROR", ad = ad, records = {}, answers = {}, authority = authority or {} }
end

local function nsec(owner, ...) return { owner = owner .. ".", type = "NSEC", next = "z." .. owner .. ".", types = set(...) } end

local function nsec3(owner, zone, salt, iterations, flags, ...)
  return { owner = owner .. "." .. zone .. ".", type = "NSEC3", algorithm = 1, flags = flags or 0,
           iterations = iterations, salt = salt, next = "00", types = set(...) }
end

local DS = { type = "DS", name = "cut.example.", rdata = "\0\1" }

case("insecure_nsec3_hash_matches_rfc5155_appendix_a", function()
  eq(dns.nsec3_hash("example", "aabbccdd", 12), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom")
  eq(dns.nsec3_hash("A.Example.", "AABBCCDD", 12), "35mthgpgcu1qg68fab165klnsnk3dpvl")
  eq(dns.nsec3_hash("insecure.sec.test", "", 0), "uck0kqbj2tm358v2cb46uij3t59r316k")
  eq(dns.nsec3_hash("example", "abc", 0), nil) -- odd-length salt
  eq(dns.nsec3_hash("example", "", 100000), nil)
end)

case("insecure_secure_ds_is_false", function()
  local q, asked = scripted{ ["cut.example"] = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } } }
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, false)
  contains(why, "signed delegation")
  eq(asked, { "www.cut.example", "cut.example" }) -- stops at the secure cut
end)

case("insecure_nsec_at_an_unsigned_cut_is_true", function()
  local q, asked = scripted{
    ["www.cut.example"] = nodata(true, { nsec("www.cut.example", "A", "RRSIG", "NSEC") }),
    ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "RRSIG", "NSEC") }),
  }
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, true)
  contains(why, "NSEC at cut.example proves an unsigned delegation")
  eq(asked, { "www.cut.example", "cut.example" })
  -- owner comparison ignores case and the trailing dot
  q = scripted{ ["cut.example"] = nodata(true, { nsec("CUT.Example", "NS") }) }
  eq((insecure.prove(q, "cut.example.")), true)
end)

case("insecure_ad0_everywhere_is_false", function()
  local q, asked = scripted{
    ["cut.example"] = nodata(false, { nsec("cut.example", "NS", "RRSIG", "NSEC") }),
    example = { rcode = "NOERROR", ad = false, records = { DS }, answers = { DS } },
  }
  local proven, why = insecure.prove(q, "a.cut.example")
  eq(proven, false)
  contains(why, "up to the TLD")
  contains(why, "AD=0")
  eq(asked, { "a.cut.example", "cut.example", "example" })
end)

case("insecure_ad0_below_then_proof_above_is_true", function()
  local q = scripted{ ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }
  eq((insecure.prove(q, "x.y.cut.example")), true)
end)

case("insecure_nsec_at_z_without_ns_continues_to_the_parent", function()
  -- a name inside the signed parent: no cut here; the parent's DS is the answer
  local q, asked = scripted{
    ["www.example"] = nodata(true, { nsec("www.example", "A", "RRSIG", "NSEC") }),
    example = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } },
  }
  eq((insecure.prove(q, "www.example")), false)
  eq(asked, { "www.example", "example" })
  -- an apex (NS and SOA) is no cut either: the zone is the signed one
  q, asked = scripted{ ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "SOA", "RRSIG", "NSEC", "DNSKEY") }) }
  eq((insecure.prove(q, "cut.example")), false)
  eq(asked, { "cut.example", "example" })
  -- an authenticated denial with NSEC records for other names: no cut at z
  q, asked = scripted{ ["a.example"] = nodata(true, { nsec("0.example", "A") }) }
  eq((insecure.prove(q, "a.example")), false)
  eq(asked, { "a.example", "example" })
end)

case("insecure_nsec_listing_ds_is_false", function()
  local q = scripted{ ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "DS") }) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, false)
  contains(why, "lists DS")
end)

case("insecure_errors_are_false", function()
  for _, kind in ipairs({ "timeout", "servfail", "refused", "dnssec_bogus", "dns" }) do
    local q, asked = scripted{ ["a.example"] = { fail = kind },
                               example = nodata(true, { nsec("example", "NS") }) }
    local proven, why = insecure.prove(q, "a.example")
    eq(proven, false, kind)
    contains(why, kind)
    eq(asked, { "a.example" }, kind)
  end
end)

case("insecure_nodata_kind_with_partial_is_judged", function()
  -- probes that report NODATA as a failure kind carry the answer as partial
  local function q(name)
    if name == "cut.example" then return nil, "nodata", "no DS", nodata(true, { nsec("cut.example", "NS") }) end
    return nil, "nodata", "no DS"
  end
  eq((insecure.prove(q, "cut.example")), true)
  eq((insecure.prove(q, "other.example")), false)
end)

case("insecure_nsec3_exact_match_at_an_unsigned_cut_is_true", function()
  local h = dns.nsec3_hash("cut.example", "ab", 1)
  local q = scripted{ ["cut.example"] = nodata(true, { nsec3(h, "example", "ab", 1, 1, "NS") }) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, true, why)
  contains(why, "NSEC3")
  -- upper-case owner labels still match
  q = scripted{ ["cut.example"] = nodata(true, { nsec3(h:upper(), "EXAMPLE", "ab", 1, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), true)
end)

case("insecure_nsec3_without_exact_match_is_false", function()
  -- only a covering record (closest-encloser / opt-out proof): not accepted
  local q, asked = scripted{ ["cut.example"] = nodata(true, { nsec3("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "example",
    "ab", 1, 1, "NS") }) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, false)
  contains(why, "exact match")
  eq(asked, { "cut.example" })
  -- an exact match under a zone that is not an ancestor of z does not count
  local h = dns.nsec3_hash("cut.example", "", 0)
  q = scripted{ ["cut.example"] = nodata(true, { nsec3(h, "other", "", 0, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), false)
  -- unknown flags, another algorithm or too many iterations: the record is ignored
  local bad = nsec3(h, "example", "", 0, 2, "NS")
  q = scripted{ ["cut.example"] = nodata(true, { bad }) }
  eq((insecure.prove(q, "cut.example")), false)
  bad = nsec3(h, "example", "", 0, 0, "NS"); bad.algorithm = 2
  q = scripted{ ["cut.example"] = nodata(true, { bad }) }
  eq((insecure.prove(q, "cut.example")), false)
  local h200 = dns.nsec3_hash("cut.example", "", 200)
  q = scripted{ ["cut.example"] = nodata(true, { nsec3(h200, "example", "", 200, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), false)
end)

case("insecure_nsec3_exact_match_without_ns_continues", function()
  local h = dns.nsec3_hash("www.example", "", 0)
  local q, asked = scripted{ ["www.example"] = nodata(true, { nsec3(h, "example", "", 0, 0, "A", "RRSIG") }),
                             example = nodata(true, { nsec("example", "NS") }) }
  eq((insecure.prove(q, "www.example")), true)
  eq(asked, { "www.example", "example" })
end)

case("insecure_needs_a_name", function()
  local q, asked = scripted{}
  eq((insecure.prove(q, nil)), false)
  eq(#asked, 0)
end)

-- The CAA checker with the real proof over a fake probe -----------------------

local function caa_probe(ds_script)
  local zone = { ["www.cut.example"] = { fail = { "timeout", "query timed out" } } }
  local probe = F.probe{ zone = zone, missing = "nodata", config = { caa_domains = { "ca.example" } } }
  local q = scripted(ds_script)
  probe.dnssec_insecure = function(name) return insecure.prove(q, name) end
  return probe
end

local function caa_check(probe, params)
  local t = assert(target.normalise("www.cut.example", { allow_reserved = true }))
  return checker.check(t, params, probe)
end

case("insecure_caa_lookup_failure_permitted_with_the_proof_in_details", function()
  local probe = caa_probe{ ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }
  local r = caa_check(probe, { allow_lookup_failure = true })
  eq(r.passed, true); eq(r.completed, true)
  contains(r.details.reason, "proven DNSSEC-Insecure")
  contains(r.details.reason, "NSEC at cut.example")
  -- the same failure without the flag fails closed
  r = caa_check(caa_probe{ ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }, {})
  eq(r.passed, false); eq(r.completed, false)
end)

case("insecure_caa_lookup_failure_in_a_signed_zone_fails_with_the_reason", function()
  local probe = caa_probe{ ["cut.example"] = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } } }
  local r = caa_check(probe, { allow_lookup_failure = true })
  eq(r.passed, false); eq(r.completed, false)
  contains(r.details.insecure_proof, "signed delegation")
  ok(r.errors and r.errors[1])
  contains(r.errors[1].error_message, "not proven DNSSEC-Insecure")
end)
