-- mpic.dnssec_insecure: the proof that a name is DNSSEC-Insecure (REFERENCE §1.7,
-- RFC 4035 §4.3 and §5.2, RFC 6840 §4.4, RFC 5155 §8.6), the condition under
-- which CAA's allow_lookup_failure may turn a lookup failure into permission.
--
-- prove(dns, name[, nsec3_hash]) climbs from name toward its TLD and asks the
-- resolver for DS at each name z (dns(z, "DS") as probe.dns: a result with
-- ad, rcode, records and authority, or nil, kind, detail, partial). The first
-- decisive answer settles it:
--   * DS records with AD=1: a secure delegation, the zone is signed -> false
--   * an authenticated (AD=1) denial of DS holding an NSEC whose owner is z,
--     or an NSEC3 whose owner is the hash of z, with NS but neither DS nor SOA
--     in its type bitmap: an insecure delegation -> true
--   * an AD=1 denial at z that is no delegation (the NSEC at z has no NS or
--     has SOA; no NSEC at z at all, as every cut of an NSEC zone has one):
--     z is inside a signed zone, next name up
--   * an NSEC3 denial without an exact match for z (the closest-encloser and
--     opt-out proofs are not accepted) -> false
--   * AD=0 answers are no evidence: next name up
--   * any error (timeout, SERVFAIL, REFUSED, bogus, ...) -> false
-- Reaching the TLD without a proof -> false. Returns true, why or false, why.
local M = {}
local ipairs, tostring, type = ipairs, tostring, type
local sfmt = string.format

M.MAX_NSEC3_ITERATIONS = 150 -- RFC 9276 §3.2: validators may treat more as Insecure

local function norm(n) return (tostring(n):lower():gsub("%.$", "")) end

-- The names from name up to its TLD, name first.
local function names_up(name)
  local out = {}
  local n = norm(name)
  while n ~= "" and #out < 128 do
    out[#out + 1] = n
    n = n:match("^[^.]*%.(.+)$") or ""
  end
  return out
end
M.names_up = names_up

local function delegation(types)
  return types.NS == true and types.DS ~= true and types.SOA ~= true
end

local function bitmap_text(types)
  local t = {}
  for _, k in ipairs({ "NS", "SOA", "DS" }) do t[#t + 1] = k .. (types[k] and "+" or "-") end
  return table.concat(t, " ")
end

-- The NSEC3 record of authority whose owner is the hash of z under one of
-- z's ancestors, or nil. Records with an unknown algorithm or flags, or too
-- many iterations, are ignored.
local function nsec3_exact(z, authority, hash)
  for _, d in ipairs(authority) do
    if d.type == "NSEC3" and d.algorithm == 1 and (d.flags == 0 or d.flags == 1)
        and type(d.iterations) == "number" and d.iterations <= M.MAX_NSEC3_ITERATIONS then
      local label, zone = norm(d.owner):match("^([^.]+)%.(.+)$")
      if label and (z:sub(-#zone - 1) == "." .. zone) then
        local h = hash(z, d.salt or "", d.iterations)
        if h and h:lower() == label then return d end
      end
    end
  end
  return nil
end

-- "insecure" | "secure" | "next" | "fail", why
local function judge(z, r, hash)
  if r.ad ~= true then return "next", sfmt("DS %s: not authenticated (AD=0)", z) end
  for _, rr in ipairs(r.records or {}) do
    if rr.type == "DS" then return "secure", sfmt("DS %s: authenticated DS records, a signed delegation", z) end
  end
  if #(r.answers or {}) > 0 then return "next", sfmt("DS %s: authenticated answer without DS", z) end
  local authority = r.authority or {}
  local any_nsec, any_nsec3 = false, false
  for _, d in ipairs(authority) do
    if d.type == "NSEC" then
      any_nsec = true
      if norm(d.owner) == z and type(d.types) == "table" then
        if delegation(d.types) then
          return "insecure", sfmt("DS %s: authenticated denial, NSEC at %s proves an unsigned delegation (%s)",
            z, z, bitmap_text(d.types))
        end
        if d.types.DS then return "fail", sfmt("DS %s: denial whose NSEC lists DS", z) end
        return "next", sfmt("DS %s: authenticated denial, %s is no delegation (NSEC %s)", z, z, bitmap_text(d.types))
      end
    elseif d.type == "NSEC3" then
      any_nsec3 = true
    end
  end
  if any_nsec3 then
    local d = nsec3_exact(z, authority, hash)
    if not d then
      return "fail", sfmt("DS %s: NSEC3 denial without an exact match (closest-encloser and opt-out proofs are "
        .. "not accepted)", z)
    end
    if type(d.types) == "table" and delegation(d.types) then
      return "insecure", sfmt("DS %s: authenticated denial, NSEC3 %s matches %s and proves an unsigned delegation (%s)",
        z, norm(d.owner), z, bitmap_text(d.types))
    end
    if type(d.types) == "table" and d.types.DS then return "fail", sfmt("DS %s: denial whose NSEC3 lists DS", z) end
    return "next", sfmt("DS %s: authenticated denial, %s is no delegation (NSEC3)", z, z)
  end
  if any_nsec then return "next", sfmt("DS %s: authenticated denial, no NSEC at %s: no delegation", z, z) end
  return "next", sfmt("DS %s: authenticated denial without NSEC or NSEC3 records", z)
end

function M.prove(dns, name, hash)
  if type(name) ~= "string" or name == "" then return false, "no name to prove Insecure" end
  hash = hash or require("mpic.core.dns").nsec3_hash
  local seen = {}
  for _, z in ipairs(names_up(name)) do
    local r, kind, detail, partial = dns(z, "DS")
    if not r then
      if (kind == "nodata" or kind == "nxdomain") and type(partial) == "table" then
        r = partial
      else
        return false, sfmt("DS %s: %s (%s)", z, tostring(kind or "error"), tostring(detail or "lookup failed"))
      end
    end
    local verdict, why = judge(z, r, hash)
    if verdict == "insecure" then return true, why end
    if verdict == "secure" or verdict == "fail" then return false, why end
    seen[#seen + 1] = why
  end
  return false, "no authenticated insecure delegation up to the TLD: " .. table.concat(seen, "; ")
end

return M
