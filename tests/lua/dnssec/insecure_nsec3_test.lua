-- The DNSSEC-Insecure proof (mpic.dnssec_insecure) through a real validating
-- resolver over a zone signed with NSEC3 and opt-out (tests/lab/test_dnssec.sh:
-- knot signs n3.test with opt-out spans, unbound validates it). Validators
-- answer a DS denial in an opt-out span as Insecure (AD=0): the proof needs
-- the closest-encloser records and the zone's own authenticated SOA.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local insecure = require "mpic.dnssec_insecure"
local case, eq, contains = T.case, T.eq, T.contains

local function lab_dns()
  local addr = assert(os.getenv("MPIC_LAB_DNS_N3"), "run through tests/lab/test_dnssec.sh")
  local r = dns.resolver({ servers = { addr }, timeout_ms = 3000, tries = 1, lifetime_ms = 6000 })
  local asked = {}
  return function(name, rtype)
    asked[#asked + 1] = rtype .. " " .. name
    return r:query(name, rtype)
  end, asked
end

case("nsec3_lab_opt_out_ds_denial_is_ad0_with_a_closest_encloser_proof", function()
  local q = lab_dns()
  local r, kind, _, partial = q("insecure.n3.test", "DS")
  r = r or partial
  T.ok(r, kind)
  eq(r.ad, false) -- the validator's Insecure
  local opt_out = false
  for _, d in ipairs(r.authority or {}) do
    eq(d.type, "NSEC3")
    if d.opt_out then opt_out = true end
  end
  T.ok(opt_out, "an NSEC3 with the Opt-Out flag")
end)

case("nsec3_lab_unsigned_delegation_in_an_opt_out_span_is_insecure", function()
  local q, asked = lab_dns()
  local proven, why = insecure.prove(q, "insecure.n3.test")
  eq(proven, true, why)
  contains(why, "closest-encloser proof: n3.test matches NSEC3")
  contains(why, "the next closer name insecure.n3.test is covered")
  contains(why, "with Opt-Out")
  contains(why, "SOA n3.test authenticated (AD=1)")
  eq(asked, { "DS insecure.n3.test", "SOA n3.test" })
end)

case("nsec3_lab_name_below_an_unsigned_cut_whose_ds_query_fails_is_insecure", function()
  local q, asked = lab_dns()
  -- the cut's server does not answer: DS for the name itself is SERVFAIL
  local r, kind = q("www.insecure.n3.test", "DS")
  eq(r, nil)
  eq(kind, "servfail")
  local proven, why = insecure.prove(q, "www.insecure.n3.test")
  eq(proven, true, why)
  contains(why, "DS insecure.n3.test: denial (AD=0, Insecure by opt-out)")
  contains(why, "below it: DS www.insecure.n3.test: servfail")
  eq(asked[#asked], "SOA n3.test")
  -- two levels below a cut under an empty non-terminal of the span
  proven, why = insecure.prove(q, "x.a.deep.n3.test")
  eq(proven, true, why)
  contains(why, "the next closer name deep.n3.test is covered")
end)

case("nsec3_lab_signed_delegations_and_signed_names_are_not_insecure", function()
  local q = lab_dns()
  local proven, why = insecure.prove(q, "lame.n3.test")
  eq(proven, false)
  contains(why, "authenticated DS records, a signed delegation")
  -- below a signed delegation whose servers are dead: the failure does not help
  proven, why = insecure.prove(q, "www.lame.n3.test")
  eq(proven, false)
  contains(why, "a signed delegation (below it: DS www.lame.n3.test: servfail")
  proven, why = insecure.prove(q, "bogus.n3.test")
  eq(proven, false)
  contains(why, "a signed delegation")
  -- a signed name: its NSEC3 matches, no delegation; the climb finds no proof
  proven, why = insecure.prove(q, "good.n3.test")
  eq(proven, false)
  contains(why, "good.n3.test is no delegation (NSEC3)")
end)
