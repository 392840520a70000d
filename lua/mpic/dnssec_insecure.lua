-- mpic.dnssec_insecure: the proof that a name is DNSSEC-Insecure (REFERENCE §1.7,
-- RFC 4035 §4.3 and §5.2, RFC 6840 §4.4, RFC 5155 §7.2.1, §7.2.4, §8.3, §8.6),
-- the condition under which CAA's allow_lookup_failure may turn a lookup
-- failure into permission.
--
-- prove(dns, name[, nsec3_hash]) climbs from name toward its TLD and asks the
-- resolver for DS at each name z (dns(z, "DS") as probe.dns: a result with
-- ad, rcode, records and authority, or nil, kind, detail, partial). The first
-- decisive answer settles it:
--   * DS records with AD=1: a secure delegation, the zone is signed -> false
--   * an authenticated (AD=1) denial of DS holding an NSEC whose owner is z,
--     or an NSEC3 whose owner is the hash of z, with NS but neither DS nor SOA
--     in its type bitmap: an insecure delegation -> true
--   * a denial of DS (NODATA or NXDOMAIN) without an NSEC3 for z that holds
--     a closest-encloser proof (RFC 5155 §8.3: an NSEC3 matching an ancestor
--     ce of z, one covering the next closer name, ce plus one label toward z)
--     whose covering NSEC3 has the Opt-Out flag: z is in an opt-out span, an
--     unsigned delegation may be there (§7.2.4, §8.6) -> true. Validators
--     answer such a denial as Insecure, with AD=0; it then counts only when
--     the zone holding the NSEC3 records is itself proven signed (its SOA
--     with AD=1 through the same resolver): a validating resolver answers
--     forged records in a signed zone with SERVFAIL, never with AD=0 data
--   * an AD=1 denial at z that is no delegation (the NSEC or NSEC3 at z has
--     no NS or has SOA; no NSEC at z at all, as every cut of an NSEC zone
--     has one): z is inside a signed zone, next name up
--   * an AD=1 NSEC3 denial without a record for z and without an opt-out
--     closest-encloser proof -> false
--   * other AD=0 answers are no evidence: next name up
--   * a failed DS query (timeout, SERVFAIL, REFUSED, bogus, ...): no
--     evidence about z, next name up; a name below an unsigned cut fails
--     this way when the cut's servers do not answer, and is Insecure when a
--     name above proves the cut (everything under an insecure delegation is
--     insecure, RFC 4035 §4.3). The failures are listed when no proof comes.
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

local function delegation(types) return types.NS == true and types.DS ~= true and types.SOA ~= true end

local function bitmap_text(types)
  local t = {}
  for _, k in ipairs({ "NS", "SOA", "DS" }) do
    t[#t + 1] = k .. (types[k] and "+" or "-")
  end
  return table.concat(t, " ")
end

-- The usable NSEC3 records of an authority section that can speak for z:
-- hash algorithm 1 (SHA-1), flags 0 or 1 (Opt-Out), at most
-- MAX_NSEC3_ITERATIONS, owner "hash.zone" with z at or below zone. Each as
-- {rr, label, zone}; records with unknown parameters are ignored (RFC 5155
-- §8.1, RFC 9276).
local function nsec3_usable(z, authority)
  local out = {}
  for _, d in ipairs(authority) do
    if
      d.type == "NSEC3"
      and d.algorithm == 1
      and (d.flags == 0 or d.flags == 1)
      and type(d.iterations) == "number"
      and d.iterations <= M.MAX_NSEC3_ITERATIONS
    then
      local label, zone = norm(d.owner):match("^([^.]+)%.(.+)$")
      if label and (z == zone or z:sub(-#zone - 1) == "." .. zone) then
        out[#out + 1] = { rr = d, label = label, zone = zone }
      end
    end
  end
  return out
end

local function hash_of(hash, n, d)
  local h = hash(n, d.salt or "", d.iterations)
  return h and h:lower() or nil
end

-- The usable record whose owner is the hash of n (n at or below its zone).
local function nsec3_match(list, n, hash)
  for _, e in ipairs(list) do
    if n == e.zone or n:sub(-#e.zone - 1) == "." .. e.zone then
      if hash_of(hash, n, e.rr) == e.label then return e end
    end
  end
  return nil
end

-- The usable record that covers n: the hash of n lies strictly between the
-- owner's hash and the next hashed owner, in the circular order of the
-- chain (base32hex keeps the order of the hashes).
local function nsec3_cover(list, n, hash)
  for _, e in ipairs(list) do
    if n:sub(-#e.zone - 1) == "." .. e.zone and type(e.rr.next) == "string" then
      local h, lo, hi = hash_of(hash, n, e.rr), e.label, e.rr.next:lower()
      if h and #h == #lo and #hi == #lo then
        if (lo < hi and lo < h and h < hi) or (lo >= hi and (h > lo or h < hi)) then return e end
      end
    end
  end
  return nil
end
M.nsec3_cover = function(records, n, hash)
  local e = nsec3_cover(nsec3_usable(norm(n), records), norm(n), hash or require("mpic.core.dns").nsec3_hash)
  return e and e.rr or nil
end

-- The closest-encloser proof for z (RFC 5155 §8.3): ce, the next closer
-- name, the matching record and the covering one; nil when there is none.
local function closest_encloser(z, list, hash)
  local labels = names_up(z)
  for i = 2, #labels do
    local ce = labels[i]
    local m = nsec3_match(list, ce, hash)
    if m then
      local nc = labels[i - 1]
      local c = nsec3_cover(list, nc, hash)
      if c and c.zone == m.zone then return { ce = ce, nc = nc, match = m, cover = c } end
      return nil
    end
  end
  return nil
end

-- "insecure" | "secure" | "next" | "fail" | "optout" (an AD=0 opt-out
-- proof that needs its zone proven signed), why[, zone]
local function judge(z, r, hash)
  local authority = r.authority or {}
  if r.ad ~= true then
    local list = nsec3_usable(z, authority)
    if #list > 0 and not nsec3_match(list, z, hash) then
      local p = closest_encloser(z, list, hash)
      if p and p.cover.rr.flags == 1 then
        return "optout",
          sfmt(
            "DS %s: denial (AD=0, Insecure by opt-out) with a closest-encloser proof: "
              .. "%s matches NSEC3 %s, the next closer name %s is covered by NSEC3 %s.%s with Opt-Out",
            z,
            p.ce,
            p.match.label,
            p.nc,
            p.cover.label,
            p.cover.zone
          ),
          p.cover.zone
      end
    end
    return "next", sfmt("DS %s: not authenticated (AD=0)", z)
  end
  for _, rr in ipairs(r.records or {}) do
    if rr.type == "DS" then return "secure", sfmt("DS %s: authenticated DS records, a signed delegation", z) end
  end
  if #(r.answers or {}) > 0 then return "next", sfmt("DS %s: authenticated answer without DS", z) end
  local any_nsec, any_nsec3 = false, false
  for _, d in ipairs(authority) do
    if d.type == "NSEC" then
      any_nsec = true
      if norm(d.owner) == z and type(d.types) == "table" then
        if delegation(d.types) then
          return "insecure",
            sfmt(
              "DS %s: authenticated denial, NSEC at %s proves an unsigned delegation (%s)",
              z,
              z,
              bitmap_text(d.types)
            )
        end
        if d.types.DS then return "fail", sfmt("DS %s: denial whose NSEC lists DS", z) end
        return "next", sfmt("DS %s: authenticated denial, %s is no delegation (NSEC %s)", z, z, bitmap_text(d.types))
      end
    elseif d.type == "NSEC3" then
      any_nsec3 = true
    end
  end
  if any_nsec3 then
    local list = nsec3_usable(z, authority)
    local e = nsec3_match(list, z, hash)
    if not e then
      local p = closest_encloser(z, list, hash)
      if p and p.cover.rr.flags == 1 then
        return "insecure",
          sfmt(
            "DS %s: authenticated denial with a closest-encloser proof: %s matches NSEC3 %s, "
              .. "the next closer name %s is covered by NSEC3 %s.%s with Opt-Out: an opt-out span",
            z,
            p.ce,
            p.match.label,
            p.nc,
            p.cover.label,
            p.cover.zone
          )
      end
      if p then
        return "fail",
          sfmt(
            "DS %s: authenticated NSEC3 denial, the closest-encloser proof's covering NSEC3 "
              .. "has no Opt-Out: no unsigned delegation there",
            z
          )
      end
      return "fail", sfmt("DS %s: NSEC3 denial without a record for %s or a closest-encloser proof", z, z)
    end
    local d = e.rr
    if type(d.types) == "table" and delegation(d.types) then
      return "insecure",
        sfmt(
          "DS %s: authenticated denial, NSEC3 %s matches %s and proves an unsigned delegation (%s)",
          z,
          norm(d.owner),
          z,
          bitmap_text(d.types)
        )
    end
    if type(d.types) == "table" and d.types.DS then return "fail", sfmt("DS %s: denial whose NSEC3 lists DS", z) end
    return "next", sfmt("DS %s: authenticated denial, %s is no delegation (NSEC3)", z, z)
  end
  if any_nsec then return "next", sfmt("DS %s: authenticated denial, no NSEC at %s: no delegation", z, z) end
  return "next", sfmt("DS %s: authenticated denial without NSEC or NSEC3 records", z)
end

-- Whether zone is proven signed through dns: its SOA answered with AD=1.
local function zone_signed(dns, zone)
  local r, kind, detail = dns(zone, "SOA")
  if not r then return false, sfmt("SOA %s: %s (%s)", zone, tostring(kind or "error"), tostring(detail)) end
  if r.ad ~= true then return false, sfmt("SOA %s: not authenticated (AD=0)", zone) end
  for _, rr in ipairs(r.records or {}) do
    if rr.type == "SOA" and norm(rr.name) == zone then return true, sfmt("SOA %s authenticated (AD=1)", zone) end
  end
  return false, sfmt("SOA %s: no SOA record at %s in the answer", zone, zone)
end

function M.prove(dns, name, hash)
  if type(name) ~= "string" or name == "" then return false, "no name to prove Insecure" end
  hash = hash or require("mpic.core.dns").nsec3_hash
  local seen = {}
  for _, z in ipairs(names_up(name)) do
    local r, kind, detail, partial = dns(z, "DS")
    if not r and (kind == "nodata" or kind == "nxdomain") and type(partial) == "table" then r = partial end
    if not r then
      seen[#seen + 1] = sfmt("DS %s: %s (%s)", z, tostring(kind or "error"), tostring(detail or "lookup failed"))
    else
      local verdict, why, zone = judge(z, r, hash)
      if verdict == "optout" then
        local signed, swhy = zone_signed(dns, zone)
        if signed then
          verdict, why = "insecure", why .. "; " .. swhy
        else
          verdict, why = "next", why .. ", but " .. swhy
        end
      end
      if verdict == "insecure" then
        if #seen > 0 then why = why .. " (below it: " .. table.concat(seen, "; ") .. ")" end
        return true, why
      end
      if verdict == "secure" or verdict == "fail" then
        if #seen > 0 then why = why .. " (below it: " .. table.concat(seen, "; ") .. ")" end
        return false, why
      end
      seen[#seen + 1] = why
    end
  end
  return false, "no authenticated insecure delegation up to the TLD: " .. table.concat(seen, "; ")
end

return M
