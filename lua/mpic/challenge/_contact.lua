-- mpic.challenge._contact: builders for the four contact methods (BR
-- 3.2.2.4.13/14/16/17). TXT: a whole concatenated RR equals the contact,
-- case-insensitively, no trimming. CAA: the first non-empty CAA RRset on the
-- climb; its contactemail/contactphone values compared case-insensitively.
local C = require "mpic.challenge._common"
local caa = require "mpic.caa"
local error_types = require "mpic.error_types"
local ipairs, type = ipairs, type

local M = {}

local function base(spec)
  return {
    name = spec.name,
    check_type = "dcv",
    br_section = spec.br_section,
    identifiers = { dns = true, ip = false },
    wildcard = "strip",
    sunset = spec.sunset,
    caa_method_label = spec.caa_method_label,
  }
end

function M.txt(spec)
  local ch = base(spec)
  ch.params = { challenge_value = { type = "string", required = true } }
  function ch.check(target, params, probe)
    local want = params.challenge_value
    if type(want) ~= "string" or want == "" then return C.bad_param(ch.name, "challenge_value", want) end
    want = want:lower()
    local name = spec.prefix .. "." .. target.value
    local r, done = C.dns_lookup(ch.name, probe, name, "TXT")
    if not r then return done end
    local d = C.dns_details(ch.name, name, r)
    for _, v in ipairs(d.records_seen) do
      if v:lower() == want then return C.result(true, true, nil, d) end
    end
    d.reason = C.incorrect_text("TXT", d.records_seen, name)
    return C.result(false, true, nil, d)
  end
  return ch
end

function M.caa(spec)
  local ch = base(spec)
  ch.params = {
    challenge_value = { type = "string", required = true },
    dns_name_prefix = { type = "string" },
  }
  function ch.check(target, params, probe)
    local want = params.challenge_value
    if type(want) ~= "string" or want == "" then return C.bad_param(ch.name, "challenge_value", want) end
    want = want:lower()
    local start = C.join(params.dns_name_prefix, target.value)
    local found, kind, detail, at, partial = caa.find_relevant(probe.dns, start)
    if not found then
      local d = C.dns_details(ch.name, at, partial)
      return C.result(false, error_types.completed(kind), C.lookup_error(kind, detail), d)
    end
    local d = C.dns_details(ch.name, found.found_at or start, found.response or { rcode = "NXDOMAIN" })
    d.records_seen = {}
    d.resolver, d.ad_flag = found.resolver, found.ad == true -- every answer the climb judged
    if #found.records == 0 then
      d.reason = "No CAA record found for " .. start
      return C.result(false, true, C.lookup_error("NoAnswer", "no CAA record set found for " .. start), d)
    end
    local hit = false
    for _, rr in ipairs(found.records) do
      if type(rr.tag) == "string" and rr.tag:lower() == spec.tag then
        local v = rr.value or ""
        d.records_seen[#d.records_seen + 1] = v
        if v:lower() == want then hit = true end
      end
    end
    if hit then return C.result(true, true, nil, d) end
    d.reason = #d.records_seen == 0 and ("CAA record set at " .. d.found_at .. " has no " .. spec.tag .. " property")
      or C.incorrect_text("CAA " .. spec.tag, d.records_seen, d.found_at)
    return C.result(false, true, nil, d)
  end
  return ch
end

return M
