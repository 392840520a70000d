-- The CAA checker (RFC 8659, RFC 8657, BR 4.2.2.1; REFERENCE §3): finds the
-- relevant RRset by climbing from the target, then decides with mpic.caa.
-- IP targets have no CAA: passed with caa_record_present=false, no query.
local C = require "mpic.challenge._common"
local caa = require "mpic.caa"
local type, ipairs, tostring, pcall = type, ipairs, tostring, pcall
local sfmt = string.format

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "caa",
  check_type = "caa",
  br_section = "4.2.2.1",
  identifiers = { dns = true, ip = true },
  wildcard = "strip",
  params = {
    certificate_type = { type = "string", enum = { "tls-server", "s-mime" } },
    caa_domains = { type = "list" },
    allow_lookup_failure = { type = "boolean" },
    account_uri = { type = "string_or_list" },
    account_id = { type = "string" },
    validation_method = { type = "string" },
  },
}

local function lookup_error(msg)
  return C.err("mpic_error:caa_checker:lookup", "There was an error looking up the CAA record: " .. msg)
end

-- The account URLs a record's accounturi may equal (§3.5).
function H.account_uris(params, config)
  local out = {}
  local a = params.account_uri
  if type(a) == "string" then
    out[1] = a
  elseif type(a) == "table" then
    for _, u in ipairs(a) do
      if type(u) == "string" then out[#out + 1] = u end
    end
  end
  if type(params.account_id) == "string" and params.account_id ~= "" then
    for _, p in ipairs((config or {}).account_uri_prefixes or {}) do
      out[#out + 1] = p .. params.account_id
    end
  end
  return out
end

local RETRYABLE = { timeout = true, servfail = true, refused = true }

function M.check(target, params, probe)
  params = params or {}
  local cfg = probe.config or {}
  local d = { caa_record_present = false, found_at = nil, records_seen = nil }
  local ctype = params.certificate_type or "tls-server"
  if ctype ~= "tls-server" and ctype ~= "s-mime" then
    return C.result(
      false,
      false,
      C.err(
        "mpic_error:caa_checker:parameter",
        "The provided parameter was invalid: certificate_type, Value provided: " .. tostring(ctype)
      ),
      d
    )
  end
  if target.kind == "ip" then
    d.reason = "CAA does not apply to IP addresses"
    return C.result(true, true, nil, d)
  end
  local domains = params.caa_domains
  if type(domains) ~= "table" or #domains == 0 then domains = cfg.caa_domains or {} end
  -- evidence: the resolver(s) that answered and the AD bit (every judged answer's)
  local function lookup()
    local f, k, dt, at, partial = caa.find_relevant(probe.dns, target.value)
    if f then
      d.resolver, d.ad_flag = f.resolver, f.ad == true
    else
      d.resolver, d.ad_flag = C.resolver_of(partial), type(partial) == "table" and partial.ad == true
    end
    return f, k, dt, at
  end
  local found, kind, detail = lookup()
  if not found and params.allow_lookup_failure == true and RETRYABLE[kind] then
    -- §1.7: one more attempt, then permission only with a proof that the zone is Insecure.
    local at
    found, kind, detail, at = lookup()
    if not found and RETRYABLE[kind] then
      local proof, why = false, "this perspective cannot prove a zone Insecure"
      if type(probe.dnssec_insecure) == "function" then
        proof, why = probe.dnssec_insecure(at)
      end
      d.insecure_proof = tostring(why)
      if proof == true then
        d.reason = sfmt("lookup failure at %s accepted: zone proven DNSSEC-Insecure: %s", tostring(at), tostring(why))
        d.caa_record_present = nil
        return C.result(true, true, nil, d)
      end
      detail = sfmt("%s; not proven DNSSEC-Insecure: %s", tostring(detail or kind), tostring(why))
    end
  end
  if not found then
    return C.result(
      false,
      false,
      lookup_error(sfmt("While processing CAA for %s: %s", target.value, tostring(detail or kind))),
      d
    )
  end
  if #found.records == 0 then
    d.reason = "no CAA records found"
    return C.result(true, true, nil, d)
  end
  d.caa_record_present = true
  d.found_at = found.found_at
  d.records_seen = caa.presentations(found.records)
  local ok, permitted, why = pcall(caa.decide, found.records, {
    wildcard = target.wildcard,
    certificate_type = ctype,
    caa_domains = domains,
    account_uris = H.account_uris(params, cfg),
    method = caa.method_labels(params.validation_method),
    legacy_critical = cfg.caa_legacy_critical == true,
  })
  if not ok then return C.result(false, false, C.err("mpic_error:caa_checker:parameter", tostring(permitted)), d) end
  d.reason = why
  return C.result(permitted, true, nil, d)
end

M.helpers = H

return M
