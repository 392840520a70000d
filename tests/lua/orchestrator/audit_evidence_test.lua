-- The audit line's per-perspective entries carry a DNS-based check's
-- evidence: the resolver that answered and the AD bit (details.resolver,
-- details.ad_flag), bounded, and nothing for checks that asked no DNS.
local T = require "mpic.testing"
local orchestrator = require "mpic.orchestrator"
local case, eq = T.case, T.eq

local DATE = "2026-12-16"

-- Every perspective passes with the details that details_of(id) gives.
local function run(details_of)
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 3000 } },
    policy = "policies/br.lua",
    date = DATE,
    outcomes = {
      ["*"] = function(pid) return { passed = true, completed = true, details = details_of(pid) } end,
    },
  }
  eq(r.status, 200)
  -- the remotes' entries, and the primary's entry of the attempt
  local by_id = {}
  for _, p in ipairs(r.audit.perspectives) do
    by_id[p.perspective_code] = p
  end
  local primary = r.audit.attempts[1].primary
  eq(primary.perspective_code, "primary")
  by_id.primary = primary
  return r, by_id
end

case("audit_entry_names_resolver_and_ad_flag", function()
  local _, by_id = run(
    function(pid)
      return {
        validation_method = "acme-dns-01",
        records_seen = {},
        ad_flag = pid == "primary",
        resolver = pid == "primary" and "127.0.0.1:53" or ("192.0.2.53:53 " .. pid),
      }
    end
  )
  eq(by_id.primary.resolver, "127.0.0.1:53")
  eq(by_id.primary.ad_flag, true)
  local n = 0
  for id, p in pairs(by_id) do
    if id ~= "primary" then
      n = n + 1
      eq(p.resolver, "192.0.2.53:53 " .. id)
      eq(p.ad_flag, false) -- false is evidence too, not left out
    end
  end
  eq(n, 5)
end)

case("audit_entry_without_dns_evidence_has_none", function()
  local r, by_id = run(
    function() return { validation_method = "acme-http-01", response_url = "http://example.com/" } end
  )
  eq(by_id.primary.resolver, nil)
  eq(by_id.primary.ad_flag, nil)
  eq(r.audit.attempts[1].perspectives[1].resolver, nil)
  eq(r.audit.attempts[1].perspectives[1].ad_flag, nil)
end)

case("audit_entry_bounds_what_a_perspective_reports", function()
  local max = orchestrator.AUDIT_RESOLVER_MAX
  local _, by_id = run(function(pid)
    if pid == "primary" then return { resolver = string.rep("9", max + 500), ad_flag = true } end
    return { resolver = { "not", "a", "string" }, ad_flag = "yes" }
  end)
  eq(#by_id.primary.resolver, max + 3)
  eq(by_id.primary.resolver, string.rep("9", max) .. "...")
  for id, p in pairs(by_id) do
    if id ~= "primary" then
      eq(p.resolver, nil, id)
      eq(p.ad_flag, nil, id)
    end
  end
  -- exactly at the limit: kept whole
  _, by_id = run(function() return { resolver = string.rep("8", max), ad_flag = false } end)
  eq(by_id.primary.resolver, string.rep("8", max))
end)
