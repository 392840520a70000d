-- dns-account-01 (BR 3.2.2.4.21, draft-ietf-acme-dns-account-label): like
-- acme-dns-01, at "_" .. base32(SHA-256(account_uri)[1..10]) .. "._acme-challenge.<name>".
local C = require "mpic.challenge._common"
local dnsmatch = require "mpic.challenge._dnsmatch"
local type = type

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "dns-account-01",
  check_type = "dcv",
  br_section = "3.2.2.4.21",
  identifiers = { dns = true, ip = false },
  wildcard = "strip",
  caa_method_label = "dns-account-01",
  params = {
    account_uri = { type = "string", required = true },
    key_authorization_hash = { type = "string", required = true },
  },
}

-- The account label ("_ujmmovf2vn55tgye" style, 17 characters).
function H.account_label(account_uri)
  local util = C.util()
  return "_" .. util.base32(util.sha256(account_uri):sub(1, 10)):lower()
end

function M.check(target, params, probe)
  if type(params.account_uri) ~= "string" or params.account_uri == "" then
    return C.bad_param(M.name, "account_uri", params.account_uri)
  end
  local want = C.hash_b64url(params.key_authorization_hash)
  if not want then return C.bad_param(M.name, "key_authorization_hash", params.key_authorization_hash) end
  local name = H.account_label(params.account_uri) .. "._acme-challenge." .. target.value
  return dnsmatch.exact_txt(M.name, probe, name, want)
end

M.helpers = H

return M
