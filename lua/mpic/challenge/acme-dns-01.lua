-- acme-dns-01 (BR 3.2.2.4.7, RFC 8555 §8.4): a TXT RR at _acme-challenge.<name>
-- equal, byte for byte, to the base64url SHA-256 of the key authorization.
local C = require "mpic.challenge._common"
local dnsmatch = require "mpic.challenge._dnsmatch"

return {
  name = "acme-dns-01",
  check_type = "dcv",
  br_section = "3.2.2.4.7",
  identifiers = { dns = true, ip = false },
  wildcard = "strip",
  caa_method_label = "dns-01",
  params = {
    key_authorization_hash = { type = "string", required = true },
  },
  check = function(target, params, probe)
    local want = C.hash_b64url(params.key_authorization_hash)
    if not want then return C.bad_param("acme-dns-01", "key_authorization_hash", params.key_authorization_hash) end
    return dnsmatch.exact_txt("acme-dns-01", probe, "_acme-challenge." .. target.value, want)
  end,
}
