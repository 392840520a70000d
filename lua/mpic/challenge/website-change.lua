-- website-change (BR 3.2.2.4.18 / 3.2.2.5.1): fetch
-- <scheme>://<host>/.well-known/pki-validation/<http_token_path>; the final
-- response must be 200 and the trimmed text of its first max(100, ...) bytes
-- must contain challenge_value and, when given, match match_regex (PCRE2
-- search through mpic.core.util.regex_search).
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local type, tostring, pcall = type, tostring, pcall
local max = math.max

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "website-change",
  check_type = "dcv",
  br_section = "3.2.2.4.18",
  br_section_ip = "3.2.2.5.1",
  identifiers = { dns = true, ip = true },
  wildcard = "reject",
  caa_method_label = "ca-tbr-18",
  params = {
    challenge_value = { type = "string", required = true },
    http_token_path = { type = "string", required = true },
    url_scheme = { type = "string", enum = { "http", "https" } },
    http_headers = { type = "table" },
    match_regex = { type = "string" },
    require_exact_case = { type = "boolean" },
  },
}

function M.validate_params(params)
  local cv, rx = params.challenge_value, params.match_regex
  if cv == "" and (type(rx) ~= "string" or rx == "") then
    return {
      {
        issue_type = "empty-challenge-value",
        message = "challenge_value may be empty only together with a non-empty match_regex",
      },
    }
  end
  return nil
end

function H.url(target, params)
  return (params.url_scheme or "http")
    .. "://"
    .. T.host(target)
    .. "/.well-known/pki-validation/"
    .. params.http_token_path
end

function M.check(target, params, probe)
  local cv, rx = params.challenge_value, params.match_regex
  if rx == nil then rx = "" end
  if type(cv) ~= "string" then return C.bad_param(M.name, "challenge_value", cv) end
  if type(rx) ~= "string" then return C.bad_param(M.name, "match_regex", rx) end
  if cv == "" and rx == "" then return C.bad_param(M.name, "challenge_value", cv) end
  local scheme = params.url_scheme or "http"
  if scheme ~= "http" and scheme ~= "https" then return C.bad_param(M.name, "url_scheme", scheme) end
  if type(params.http_token_path) ~= "string" or params.http_token_path == "" then
    return C.bad_param(M.name, "http_token_path", params.http_token_path)
  end
  local url = H.url(target, params)
  local res, d = C.http_fetch(
    M.name,
    probe,
    url,
    { max_bytes = max(100, #cv, #rx), max_redirects = 20, headers = params.http_headers, https = scheme == "https" }
  )
  if not res then return d end
  local text = C.trim((res.body or ""):sub(1, max(100, #cv, #rx)))
  local hay, needle = text, cv
  if params.require_exact_case == false then
    hay, needle = text:lower(), cv:lower()
  end
  if not hay:find(needle, 1, true) then
    d.reason = "challenge value not found in the response from " .. tostring(d.response_url)
    return C.result(false, true, nil, d)
  end
  if rx ~= "" then
    local ok, util = pcall(C.util)
    if not ok or type(util.regex_search) ~= "function" then
      return C.result(
        false,
        false,
        C.err("mpic_error:dcv_checker:lookup", "regular expression support is unavailable"),
        d
      )
    end
    local matched, rerr = util.regex_search(rx, text)
    if matched == nil then
      return C.result(false, false, C.param_error("match_regex", tostring(rx) .. " (" .. tostring(rerr) .. ")"), d)
    end
    if not matched then
      d.reason = "match_regex did not match the response from " .. tostring(d.response_url)
      return C.result(false, true, nil, d)
    end
  end
  return C.result(true, true, nil, d)
end

M.helpers = H

return M
