-- Hijack scenarios against the loopback lab (tests/lab/lab.sh): perspectives
-- whose resolver gives the attacker's view of scen.test reach the attacker's
-- DNS records, web server and TLS server, as after a BGP hijack of their
-- path. For every method the same matrix: hijacks within the quorum's
-- tolerance are outvoted; one more is not valid; the attacker's own request,
-- seen by a minority, is never valid; corroborations from one RIR are not
-- enough; a broken resolver (SERVFAIL from a Bogus zone, or no answer) fails
-- closed at its perspective while the quorum still decides.
local T = require "mpic.testing"
local L = require "scenario_lab"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local pairs, ipairs, tostring, string_format = pairs, ipairs, tostring, string.format

local SIX = { "pdx", "fra", "sto", "sgp", "gru", "jnb" } -- ARIN RIPE RIPE APNIC LACNIC AFRINIC
local FIVE = { "pdx", "fra", "sgp", "gru", "jnb" } -- ARIN RIPE APNIC LACNIC AFRINIC
local ONE_RIR = { "pdx", "ord", "dfw", "mia", "fra" } -- four ARIN and one RIPE

local function views(set, special)
  local v = {}
  for _, id in ipairs(set) do
    v[id] = (special and special[id]) or "legit"
  end
  return v
end

local function cancelled(cr) return L.errors_text(cr):find("cancelled after outcome decided", 1, true) ~= nil end

-- Every perspective behaved as its view implies. owner=true: the owner's
-- request (legit views corroborate, hijacked ones must not); owner=false:
-- the attacker's request (only hijacked views can pass).
local function check_views(resp, remotes, primary_view, owner)
  local by = L.by_code(resp)
  local function one(code, view, cr)
    ok(cr, "no result for " .. code)
    local good = (view == "legit") == owner
    if view ~= "legit" and view ~= "evil" then good = false end
    if good then
      ok(
        cr.check_passed or cancelled(cr),
        string_format(
          "%s (%s view) should corroborate: %s %s",
          code,
          view,
          L.errors_text(cr),
          tostring(cr.details and cr.details.reason)
        )
      )
    else
      eq(cr.check_passed, false, code .. " (" .. view .. " view) must not corroborate")
    end
  end
  for code, view in pairs(remotes) do
    one(code, view, by[code])
  end
  if primary_view then one("primary", primary_view, resp.primary_perspective.check_response) end
end

local function run(req, spec)
  L.load(spec)
  local resp = L.validate(req)
  check_views(resp, spec.remotes, spec.primary, spec.owner ~= false)
  return resp
end

local function why(resp) return tostring(resp.mpic_decision and resp.mpic_decision.reason) end

local METHODS = {
  { name = "dns01", owner = L.dns01("owner"), evil = L.dns01("evil") },
  { name = "http01", owner = L.http01("owner"), evil = L.http01("evil") },
  { name = "http01_redirect", owner = L.http01("redirect") },
  { name = "website_change", owner = L.website("owner"), evil = L.website("evil") },
  { name = "tlsalpn01", owner = L.tlsalpn("owner"), evil = L.tlsalpn("evil") },
  -- CAA: caa-permit.scen.test permits ca.example, the attacker's view forbids
  -- it (a hijack to block issuance); caa-forbid.scen.test forbids, the
  -- attacker's view permits (a hijack to obtain a certificate).
  { name = "caa", owner = L.caa("caa-permit.scen.test"), evil = L.caa("caa-forbid.scen.test") },
}

for _, m in ipairs(METHODS) do
  case(m.name .. "_two_hijacked_of_six_are_outvoted", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(SIX, { fra = "evil", sgp = "evil" }) })
    eq(resp.is_valid, true, why(resp))
    contains(why(resp), "quorum met")
    eq(resp.actual_orchestration_parameters.quorum_count, 4)
  end)

  case(m.name .. "_one_hijacked_of_five_is_outvoted", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(FIVE, { gru = "evil" }) })
    eq(resp.is_valid, true, why(resp))
  end)

  case(m.name .. "_three_hijacked_of_six_not_valid", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(SIX, { fra = "evil", sgp = "evil", jnb = "evil" }) })
    eq(resp.is_valid, false)
    contains(why(resp), "quorum cannot be met")
  end)

  case(m.name .. "_two_hijacked_of_five_not_valid", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(FIVE, { pdx = "evil", sgp = "evil" }) })
    eq(resp.is_valid, false)
    contains(why(resp), "quorum cannot be met")
  end)

  case(m.name .. "_corroborations_from_one_rir_not_valid", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(ONE_RIR, { fra = "evil" }) })
    eq(resp.is_valid, false)
    contains(why(resp), "RIR")
  end)

  case(m.name .. "_servfail_fails_closed_and_quorum_decides", function()
    local resp =
      run(m.owner, { primary = "legit", wait_all = true, remotes = views(SIX, { sto = "broken", fra = "evil" }) })
    eq(resp.is_valid, true, why(resp))
    local sto = L.by_code(resp).sto
    eq(sto.check_completed, false)
    eq(sto.check_passed, false)
    local text = L.errors_text(sto)
    ok(text:find("Bogus", 1, true) or text:find("DNSKEY Missing", 1, true), "broken resolver error: " .. text)
  end)

  case(m.name .. "_timeout_fails_closed_and_quorum_decides", function()
    local resp =
      run(m.owner, { primary = "legit", wait_all = true, remotes = views(SIX, { sgp = "blackhole", fra = "broken" }) })
    eq(resp.is_valid, true, why(resp))
    local sgp = L.by_code(resp).sgp
    eq(sgp.check_completed, false)
    eq(sgp.check_passed, false)
    contains(L.errors_text(sgp), "timed out")
    eq(resp.mpic_completed, true) -- 2 errors are within n - quorum = 2
  end, { timeout_ms = 15000 })

  case(m.name .. "_broken_plus_hijack_beyond_tolerance_not_valid", function()
    local resp = run(m.owner, { primary = "legit", remotes = views(FIVE, { fra = "broken", sgp = "evil" }) })
    eq(resp.is_valid, false)
  end)

  if m.evil then
    case(m.name .. "_attacker_seen_by_primary_and_minority_never_valid", function()
      local resp =
        run(m.evil, { primary = "evil", owner = false, remotes = views(SIX, { fra = "evil", sgp = "evil" }) })
      eq(resp.is_valid, false)
      -- the hijacked primary was fooled, as a single-perspective CA would be,
      -- unless the remotes made the verdict certain before it answered (it is
      -- then cancelled: early decision)
      local pr = resp.primary_perspective.check_response
      if not L.errors_text(pr):find("cancelled after outcome decided", 1, true) then
        eq(pr.check_passed, true, L.errors_text(pr) .. " " .. tostring(pr.details and pr.details.reason))
      end
      contains(why(resp), "quorum cannot be met")
    end)

    case(m.name .. "_attacker_seen_by_remote_minority_never_valid", function()
      local resp =
        run(m.evil, { primary = "legit", owner = false, remotes = views(SIX, { fra = "evil", sgp = "evil" }) })
      eq(resp.is_valid, false)
      eq(resp.primary_perspective.check_response.check_passed, false)
    end)
  end
end

-- Without a primary (Open MPIC's model) the quorum alone decides.
case("dns01_no_primary_two_hijacked_of_six_outvoted", function()
  local resp = run(L.dns01("owner"), { remotes = views(SIX, { fra = "evil", sgp = "evil" }) })
  eq(resp.is_valid, true, why(resp))
  eq(resp.primary_perspective, nil)
end)

case("dns01_no_primary_attacker_majority_is_valid_for_attacker", function()
  -- the limit of MPIC: an attacker who hijacks a quorum of perspectives wins
  local resp = run(
    L.dns01("evil"),
    { owner = false, remotes = views(SIX, { pdx = "evil", fra = "evil", sgp = "evil", gru = "evil" }) }
  )
  eq(resp.is_valid, true, why(resp))
end)
