-- acme-http-01 (BR 3.2.2.4.19 / 3.2.2.5.6, RFC 8555 §8.3, RFC 8738): GET
-- http://<host>/.well-known/acme-challenge/<token>; the final response must be
-- 200 and its body (< 128 bytes, trailing whitespace trimmed) must equal the key
-- authorization byte for byte. Redirect rules live in mpic.fetch.
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local type, tostring = type, tostring
local sfmt = string.format

local MAX_BODY = 128

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "acme-http-01",
  check_type = "dcv",
  br_section = "3.2.2.4.19",
  br_section_ip = "3.2.2.5.6",
  identifiers = { dns = true, ip = true },
  wildcard = "reject",
  caa_method_label = "http-01",
  params = {
    token = { type = "string", required = true },
    key_authorization = { type = "string", required = true },
    http_headers = { type = "table" },
  },
}

function H.url(target, token) return "http://" .. T.host(target) .. "/.well-known/acme-challenge/" .. token end

function M.check(target, params, probe)
  local token, ka = params.token, params.key_authorization
  if type(token) ~= "string" or not token:match("^[A-Za-z0-9_-]+$") then return C.bad_param(M.name, "token", token) end
  if type(ka) ~= "string" or ka == "" then return C.bad_param(M.name, "key_authorization", ka) end
  local url = H.url(target, token)
  local res, d = C.http_fetch(
    M.name,
    probe,
    url,
    { max_bytes = MAX_BODY, max_redirects = 10, headers = params.http_headers, https = false }
  )
  if not res then return d end
  local body = res.body or ""
  if res.exceeded or #body >= MAX_BODY then
    d.reason = sfmt(
      "Invalid response from %s: body is %s %d bytes",
      tostring(d.response_url),
      res.exceeded and "more than" or "at least",
      MAX_BODY
    )
    return C.result(false, true, nil, d)
  end
  local got = C.trim_right(body)
  if got == ka then return C.result(true, true, nil, d) end
  d.reason =
    sfmt('The key authorization file from the server did not match this challenge. Expected "%s" (got "%s")', ka, got)
  return C.result(false, true, nil, d)
end

M.helpers = H

return M
