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
  for _, k in ipairs({ ... }) do
    t[k] = true
  end
  return t
end

local function nodata(ad, authority)
  return { rcode = "NOERROR", ad = ad, records = {}, answers = {}, authority = authority or {} }
end

local function nsec(owner, ...)
  return { owner = owner .. ".", type = "NSEC", next = "z." .. owner .. ".", types = set(...) }
end

local function nsec3(owner, zone, salt, iterations, flags, ...)
  return {
    owner = owner .. "." .. zone .. ".",
    type = "NSEC3",
    algorithm = 1,
    flags = flags or 0,
    iterations = iterations,
    salt = salt,
    next = "00",
    types = set(...),
  }
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
  local q, asked = scripted { ["cut.example"] = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } } }
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, false)
  contains(why, "signed delegation")
  eq(asked, { "www.cut.example", "cut.example" }) -- stops at the secure cut
end)

case("insecure_nsec_at_an_unsigned_cut_is_true", function()
  local q, asked = scripted {
    ["www.cut.example"] = nodata(true, { nsec("www.cut.example", "A", "RRSIG", "NSEC") }),
    ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "RRSIG", "NSEC") }),
  }
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, true)
  contains(why, "NSEC at cut.example proves an unsigned delegation")
  eq(asked, { "www.cut.example", "cut.example" })
  -- owner comparison ignores case and the trailing dot
  q = scripted { ["cut.example"] = nodata(true, { nsec("CUT.Example", "NS") }) }
  eq((insecure.prove(q, "cut.example.")), true)
end)

case("insecure_ad0_everywhere_is_false", function()
  local q, asked = scripted {
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
  local q = scripted { ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }
  eq((insecure.prove(q, "x.y.cut.example")), true)
end)

case("insecure_nsec_at_z_without_ns_continues_to_the_parent", function()
  -- a name inside the signed parent: no cut here; the parent's DS is the answer
  local q, asked = scripted {
    ["www.example"] = nodata(true, { nsec("www.example", "A", "RRSIG", "NSEC") }),
    example = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } },
  }
  eq((insecure.prove(q, "www.example")), false)
  eq(asked, { "www.example", "example" })
  -- an apex (NS and SOA) is no cut either: the zone is the signed one
  q, asked =
    scripted { ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "SOA", "RRSIG", "NSEC", "DNSKEY") }) }
  eq((insecure.prove(q, "cut.example")), false)
  eq(asked, { "cut.example", "example" })
  -- an authenticated denial with NSEC records for other names: no cut at z
  q, asked = scripted { ["a.example"] = nodata(true, { nsec("0.example", "A") }) }
  eq((insecure.prove(q, "a.example")), false)
  eq(asked, { "a.example", "example" })
end)

case("insecure_nsec_listing_ds_is_false", function()
  local q = scripted { ["cut.example"] = nodata(true, { nsec("cut.example", "NS", "DS") }) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, false)
  contains(why, "lists DS")
end)

case("insecure_errors_are_no_evidence_and_no_proof", function()
  -- a failed DS query says nothing about z: the climb goes on, and without a
  -- proof above, the failure is in the reason
  for _, kind in ipairs({ "timeout", "servfail", "refused", "dnssec_bogus", "dns" }) do
    local q, asked = scripted { ["a.example"] = { fail = kind } }
    local proven, why = insecure.prove(q, "a.example")
    eq(proven, false, kind)
    contains(why, "DS a.example: " .. kind)
    eq(asked, { "a.example", "example" }, kind)
  end
  -- a failure everywhere: false
  local q = scripted { ["a.example"] = { fail = "servfail" }, example = { fail = "servfail" } }
  eq((insecure.prove(q, "a.example")), false)
end)

case("insecure_name_below_an_unsigned_cut_whose_ds_query_fails_is_true", function()
  -- the cut's servers do not answer: DS for the name below fails, the
  -- authenticated denial at the cut proves everything below it Insecure
  for _, kind in ipairs({ "timeout", "servfail", "refused", "dnssec_bogus", "dns" }) do
    local q, asked = scripted {
      ["www.cut.example"] = { fail = kind },
      ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }),
    }
    local proven, why = insecure.prove(q, "www.cut.example")
    eq(proven, true, kind)
    contains(why, "NSEC at cut.example proves an unsigned delegation")
    contains(why, "below it: DS www.cut.example: " .. kind)
    eq(asked, { "www.cut.example", "cut.example" }, kind)
  end
  -- a failure below a signed delegation stays false
  local q = scripted {
    ["www.cut.example"] = { fail = "servfail" },
    ["cut.example"] = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } },
  }
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, false)
  contains(why, "signed delegation (below it: DS www.cut.example: servfail")
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
  local q = scripted { ["cut.example"] = nodata(true, { nsec3(h, "example", "ab", 1, 1, "NS") }) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, true, why)
  contains(why, "NSEC3")
  -- upper-case owner labels still match
  q = scripted { ["cut.example"] = nodata(true, { nsec3(h:upper(), "EXAMPLE", "ab", 1, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), true)
end)

case("insecure_nsec3_without_exact_match_or_closest_encloser_is_false", function()
  -- only a covering record, no closest encloser: not a proof
  local q, asked = scripted {
    ["cut.example"] = nodata(true, { nsec3("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "example", "ab", 1, 1, "NS") }),
  }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, false)
  contains(why, "without a record for cut.example or a closest-encloser proof")
  eq(asked, { "cut.example" })
  -- an exact match under a zone that is not an ancestor of z does not count
  local h = dns.nsec3_hash("cut.example", "", 0)
  q = scripted { ["cut.example"] = nodata(true, { nsec3(h, "other", "", 0, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), false)
  -- unknown flags, another algorithm or too many iterations: the record is ignored
  local bad = nsec3(h, "example", "", 0, 2, "NS")
  q = scripted { ["cut.example"] = nodata(true, { bad }) }
  eq((insecure.prove(q, "cut.example")), false)
  bad = nsec3(h, "example", "", 0, 0, "NS")
  bad.algorithm = 2
  q = scripted { ["cut.example"] = nodata(true, { bad }) }
  eq((insecure.prove(q, "cut.example")), false)
  local h200 = dns.nsec3_hash("cut.example", "", 200)
  q = scripted { ["cut.example"] = nodata(true, { nsec3(h200, "example", "", 200, 0, "NS") }) }
  eq((insecure.prove(q, "cut.example")), false)
end)

-- An NSEC3 record at owner hash `label` under zone whose next hashed owner is `next`.
local function n3(label, zone, nxt, flags, ...)
  local d = nsec3(label, zone, "ab", 1, flags, ...)
  d.next = nxt
  return d
end

-- hash +/- one in base32hex order (the last digit; enough for a test span)
local DIGITS = "0123456789abcdefghijklmnopqrstuv"
local function step(h, by)
  local last = h:sub(-1)
  local i = DIGITS:find(last, 1, true) + by
  assert(i >= 1 and i <= 32, "hash at the edge of the alphabet")
  return h:sub(1, -2) .. DIGITS:sub(i, i)
end

-- The closest-encloser proof for z = nc.ce: ce matched, nc covered.
local function ce_proof(nc, ce, zone, opt_out)
  local hce, hnc = dns.nsec3_hash(ce, "ab", 1), dns.nsec3_hash(nc, "ab", 1)
  return {
    n3(hce, zone, step(hce, 1), 0, "NS", "SOA", "RRSIG", "DNSKEY", "NSEC3PARAM"),
    n3(step(hnc, -1), zone, step(hnc, 1), opt_out and 1 or 0, "A", "RRSIG"),
  }
end

case("insecure_nsec3_opt_out_closest_encloser_proof_is_true", function()
  -- RFC 5155 §7.2.4/§8.6: no NSEC3 for the delegation, its next closer name
  -- covered by an Opt-Out NSEC3: an opt-out span, Insecure
  local auth = ce_proof("cut.example", "example", "example", true)
  local q, asked = scripted { ["cut.example"] = nodata(true, auth) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, true, why)
  contains(why, "closest-encloser proof: example matches NSEC3")
  contains(why, "the next closer name cut.example is covered")
  eq(asked, { "cut.example" })
  -- a name deeper than the next closer: the same span covers it
  auth = ce_proof("cut.example", "example", "example", true)
  q = scripted { ["a.b.cut.example"] = nodata(true, auth) }
  proven, why = insecure.prove(q, "a.b.cut.example")
  eq(proven, true, why)
  contains(why, "the next closer name cut.example is covered")
  -- NXDOMAIN with the same proof (the probe's nxdomain kind with partial)
  local function nx(name)
    if name == "cut.example" then
      return nil, "nxdomain", "no such name", nodata(true, ce_proof("cut.example", "example", "example", true))
    end
    return nil, "servfail", "x"
  end
  eq((insecure.prove(nx, "cut.example")), true)
end)

case("insecure_nsec3_closest_encloser_without_opt_out_is_false", function()
  local q = scripted { ["cut.example"] = nodata(true, ce_proof("cut.example", "example", "example", false)) }
  local proven, why = insecure.prove(q, "cut.example")
  eq(proven, false)
  contains(why, "has no Opt-Out")
  -- the cover in another zone than the match: no proof
  local auth = ce_proof("cut.example", "example", "example", true)
  auth[2].owner = auth[2].owner:gsub("example%.$", "other.example.")
  q = scripted { ["cut.example"] = nodata(true, auth) }
  eq((insecure.prove(q, "cut.example")), false)
  -- a covering span that does not cover the next closer name
  auth = ce_proof("cut.example", "example", "example", true)
  local h = dns.nsec3_hash("cut.example", "ab", 1)
  auth[2].owner = step(h, 1) .. ".example."
  auth[2].next = step(h, 2)
  q = scripted { ["cut.example"] = nodata(true, auth) }
  eq((insecure.prove(q, "cut.example")), false)
end)

case("insecure_nsec3_cover_wraps_around_the_chain", function()
  -- the last NSEC3 of the chain covers hashes above its owner and below the first
  local h = dns.nsec3_hash("cut.example", "ab", 1)
  local last = n3(step(h, -1), "example", "00000000000000000000000000000000", 1)
  eq(insecure.nsec3_cover({ last }, "cut.example"), last)
  local first = n3("00000000000000000000000000000000", "example", step(h, 1), 1)
  eq(insecure.nsec3_cover({ first }, "cut.example"), first)
  local none = n3(step(h, 1), "example", step(h, 2), 1)
  eq(insecure.nsec3_cover({ none }, "cut.example"), nil)
end)

case("insecure_nsec3_opt_out_with_ad0_needs_the_zone_proven_signed", function()
  -- validators answer the opt-out denial Insecure (AD=0): the zone's own SOA
  -- with AD=1 through the same resolver makes the records count
  local soa = { rcode = "NOERROR", ad = true, records = { { type = "SOA", name = "example." } }, answers = {} }
  local script = { ["cut.example"] = nodata(false, ce_proof("cut.example", "example", "example", true)) }
  local function q(name, rtype)
    if rtype == "SOA" then
      if script.soa then return script.soa end
      return nil, "servfail", "no SOA"
    end
    local s = script[name]
    if s then return s end
    return nodata(false)
  end
  script.soa = soa
  local proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, true, why)
  contains(why, "AD=0, Insecure by opt-out")
  contains(why, "SOA example authenticated (AD=1)")
  -- the zone's SOA without AD, or failing: no proof
  script.soa = { rcode = "NOERROR", ad = false, records = { { type = "SOA", name = "example." } }, answers = {} }
  proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, false)
  contains(why, "SOA example: not authenticated (AD=0)")
  script.soa = nil
  proven, why = insecure.prove(q, "www.cut.example")
  eq(proven, false)
  contains(why, "SOA example: servfail")
  -- an AD=0 denial without the Opt-Out flag is no evidence at all
  script["cut.example"] = nodata(false, ce_proof("cut.example", "example", "example", false))
  script.soa = soa
  eq((insecure.prove(q, "www.cut.example")), false)
end)

case("insecure_nsec3_exact_match_without_ns_continues", function()
  local h = dns.nsec3_hash("www.example", "", 0)
  local q, asked = scripted {
    ["www.example"] = nodata(true, { nsec3(h, "example", "", 0, 0, "A", "RRSIG") }),
    example = nodata(true, { nsec("example", "NS") }),
  }
  eq((insecure.prove(q, "www.example")), true)
  eq(asked, { "www.example", "example" })
end)

case("insecure_needs_a_name", function()
  local q, asked = scripted {}
  eq((insecure.prove(q, nil)), false)
  eq(#asked, 0)
end)

-- The CAA checker with the real proof over a fake probe -----------------------

local function caa_probe(ds_script)
  local zone = { ["www.cut.example"] = { fail = { "timeout", "query timed out" } } }
  local probe = F.probe { zone = zone, missing = "nodata", config = { caa_domains = { "ca.example" } } }
  local q = scripted(ds_script)
  probe.dnssec_insecure = function(name) return insecure.prove(q, name) end
  return probe
end

local function caa_check(probe, params)
  local t = assert(target.normalise("www.cut.example", { allow_reserved = true }))
  return checker.check(t, params, probe)
end

case("insecure_caa_lookup_failure_permitted_with_the_proof_in_details", function()
  local probe = caa_probe { ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }
  local r = caa_check(probe, { allow_lookup_failure = true })
  eq(r.passed, true)
  eq(r.completed, true)
  contains(r.details.reason, "proven DNSSEC-Insecure")
  contains(r.details.reason, "NSEC at cut.example")
  -- the same failure without the flag fails closed
  r = caa_check(caa_probe { ["cut.example"] = nodata(true, { nsec("cut.example", "NS") }) }, {})
  eq(r.passed, false)
  eq(r.completed, false)
end)

case("insecure_caa_lookup_failure_in_a_signed_zone_fails_with_the_reason", function()
  local probe = caa_probe { ["cut.example"] = { rcode = "NOERROR", ad = true, records = { DS }, answers = { DS } } }
  local r = caa_check(probe, { allow_lookup_failure = true })
  eq(r.passed, false)
  eq(r.completed, false)
  contains(r.details.insecure_proof, "signed delegation")
  ok(r.errors and r.errors[1])
  contains(r.errors[1].error_message, "not proven DNSSEC-Insecure")
end)
