-- mpic.evidence: signed perspective results (docs/EVIDENCE.md).
--
-- A perspective's result is bound to what it answered and what it saw by a
-- statement, signed with Ed25519 over the statement's canonical JSON
-- (mpic.core.sign.canonical: sorted keys, no whitespace, integers only):
--   {v = 1,
--    request = {target, check_type, method, params_sha256, trace_identifier},
--    perspective = {id, rir},
--    result = {passed, completed, errors = [{error_type, error_message}]},
--    time_ns,
--    observed = {...}}   -- the evidence the check saw, from its details
-- Both ends build the statement themselves: the agent from the request it
-- got and the result it computed, the coordinator from the request it sent
-- and the answer it received. The signature therefore only verifies when the
-- agent signed exactly this request, this verdict and this evidence; an
-- answer replayed from another request, an edited verdict, or a signature
-- by another key does not. An answer carries only its signature:
--   signature = {alg = "ed25519", key_id = HEX, value = BASE64}
-- key_id is the SHA-256 of the public key's DER SubjectPublicKeyInfo.
local util = require "mpic.core.util"
local sign = require "mpic.core.sign"

local M = {}
local type, ipairs, pairs, tostring, math_type = type, ipairs, pairs, tostring, math.type
local string_format = string.format

M.VERSION = 1
M.ALG = "ed25519"
-- the signature error type (mpic.error_types): a configured key and no or a
-- bad signature is a non-pass of its own kind
M.ERROR_TYPE = "mpic_error:coordinator:signature"
-- how far a signed time may lie from the coordinator's clock
M.MAX_SKEW_NS = 300 * 1000000000

local function hex_sha256(s) return util.hex(util.sha256(s)) end

local function is_null(v) return v == nil or v == util.null end

--- The SHA-256 (hex) of the canonical JSON of a request's parameters
--- (an absent or null parameter object hashes as {}).
function M.params_sha256(params)
  if is_null(params) then params = {} end
  local text, err = sign.canonical(params)
  if not text then return nil, err end
  return hex_sha256(text)
end

-- Detail fields that are evidence, copied as they are: DNS (the answering
-- resolver's address, rcode, AD flag, the records, the name, CNAMEs; CAA's
-- records and where they were found), HTTP (every hop, the final URL and
-- status, the address connected to), TLS-ALPN (the address and the
-- certificate's SHA-256).
M.OBSERVED_FIELDS = {
  "resolver",
  "response_code",
  "ad_flag",
  "records_seen",
  "found_at",
  "cname_chain",
  "records",
  "caa_record_present",
  "response_history",
  "response_url",
  "response_status_code",
  "resolved_ip",
  "certificate_sha256",
  "validation_method",
}

local NULL = util.null

--- The evidence of a check's details: OBSERVED_FIELDS, plus body_sha256 for
--- an HTTP check (the SHA-256 of the body it received, from response_page).
--- Built by one constructor (the table is made at its size once; a nil
--- field is simply absent), then any JSON null dropped.
function M.observed(details)
  if type(details) ~= "table" then return {} end
  local d = details
  local o = {
    resolver = d.resolver,
    response_code = d.response_code,
    ad_flag = d.ad_flag,
    records_seen = d.records_seen,
    found_at = d.found_at,
    cname_chain = d.cname_chain,
    records = d.records,
    caa_record_present = d.caa_record_present,
    response_history = d.response_history,
    response_url = d.response_url,
    response_status_code = d.response_status_code,
    resolved_ip = d.resolved_ip,
    certificate_sha256 = d.certificate_sha256,
    validation_method = d.validation_method,
  }
  for k, v in next, o do
    if v == NULL then o[k] = nil end
  end
  if type(details.response_page) == "string" then
    local body = util.base64_decode(details.response_page)
    if body then o.body_sha256 = hex_sha256(body) end
  end
  return o
end

local function clean_errors(errors)
  local out = setmetatable({}, util.array_mt)
  if type(errors) ~= "table" then return out end
  for i, e in ipairs(errors) do
    out[i] = {
      error_type = tostring(e.error_type),
      error_message = type(e.error_message) == "string" and e.error_message or util.null,
    }
  end
  return out
end

--- The request part of a statement from a checker body (decoded JSON, as
--- the agent receives it and the coordinator sends it): {target,
--- check_type, method (dcv: the validation_method; caa: "caa"), params,
--- trace_identifier}.
function M.request_of(check_type, body)
  local params = body[check_type .. "_check_parameters"]
  if is_null(params) then params = {} end
  return {
    target = body.domain_or_ip_target,
    check_type = check_type,
    method = check_type == "dcv" and params.validation_method or "caa",
    params = params,
    trace_identifier = body.trace_identifier,
  }
end

--[[ The statement of one result. req: {target, check_type, method, params
(the parameter object as sent), trace_identifier}; p: {id, rir}; res:
{passed, completed, errors, details}; time_ns: integer. ]]
function M.statement(req, p, res, time_ns)
  -- req.params_sha256: the hash computed once for all of one request's statements
  local ph, err = req.params_sha256, nil
  if not ph then
    ph, err = M.params_sha256(req.params)
  end
  if not ph then return nil, "parameters: " .. tostring(err) end
  return {
    v = M.VERSION,
    request = {
      target = req.target,
      check_type = req.check_type,
      method = req.method or util.null,
      params_sha256 = ph,
      trace_identifier = not is_null(req.trace_identifier) and req.trace_identifier or util.null,
    },
    perspective = { id = p.id, rir = p.rir },
    result = { passed = res.passed == true, completed = res.completed == true, errors = clean_errors(res.errors) },
    time_ns = math_type(time_ns) == "integer" and time_ns or 0,
    observed = M.observed(res.details),
  }
end

--- The canonical bytes of a statement (what is signed).
--[[ A local perspective's evidence in a sealed audit line: {v, time_ns,
observed}. Its request, perspective and result are the line's and the
entry's own (target, check_type, validation_method, perspective_code,
check_passed, errors, resolver, ad_flag), all under the same seal, so they
are not repeated: observed leaves out resolver, ad_flag and
validation_method. ]]
function M.local_observation(res, time_ns)
  local o = M.observed(res.details)
  o.resolver, o.ad_flag, o.validation_method = nil, nil, nil
  return {
    v = M.VERSION,
    time_ns = math_type(time_ns) == "integer" and time_ns or 0,
    observed = o,
  }
end

function M.encode(st) return sign.canonical(st) end

--- A signing key: {key, id} from a PEM file (nil, why on failure).
function M.load_private(path)
  local f, ferr = io.open(path, "rb")
  if not f then return nil, "signing key: " .. tostring(ferr) end
  local pem = f:read("a")
  f:close()
  local k, _, detail = sign.private(pem)
  if not k then return nil, string_format("signing key %s: %s", path, tostring(detail)) end
  return { key = k, id = k:id(), path = path }
end

--- The public keys of a list of PEM files (or PEM texts), keyed by key id:
--- {[id] = pub} (nil, why on failure).
function M.load_public(list)
  local keys = {}
  for _, item in ipairs(list or {}) do
    local pem = item
    if not item:find("-----BEGIN", 1, true) then
      local f, ferr = io.open(item, "rb")
      if not f then return nil, "public key: " .. tostring(ferr) end
      pem = f:read("a")
      f:close()
    end
    local k, _, detail = sign.public(pem)
    if not k then return nil, string_format("public key %s: %s", item, tostring(detail)) end
    keys[k:id()] = k
  end
  return keys
end

--- Sign a statement: the signature object of an answer or audit entry.
function M.sign(key, st)
  local text, err = M.encode(st)
  if not text then return nil, err end
  return { alg = M.ALG, key_id = key.id, value = util.base64(key.key:sign(text)) }
end

--[[ Audit lines written before seals (mpic.audit_log) carry local_signature:
one signature over the canonical JSON of {v = 1, statements = [st...]}, the
statements of every local result of the validation in the order of its
audit line's entries (each attempt's primary, then its perspectives).
`mpic audit verify` still checks them; nothing writes them any more (the
seal after the line proves its local results). ]]
function M.batch(statements) return { v = M.VERSION, statements = setmetatable(statements, util.array_mt) } end

--- Sign the statements of a validation's local results at once.
function M.sign_batch(key, statements) return M.sign(key, M.batch(statements)) end

--- Verify a local_signature over statements (as M.verify).
function M.verify_batch(keys, statements, sig) return M.verify(keys, M.batch(statements), sig) end

--- Verify sig over st with one of keys ({[id] = pub}). true | nil, why.
function M.verify(keys, st, sig)
  if type(sig) ~= "table" then return nil, "no signature" end
  if sig.alg ~= M.ALG then return nil, "signature algorithm is not " .. M.ALG end
  if type(sig.key_id) ~= "string" or type(sig.value) ~= "string" then return nil, "malformed signature" end
  local pub = keys and keys[sig.key_id]
  if not pub then return nil, "signed by an unknown key " .. sig.key_id:sub(1, 16) end
  local raw = util.base64_decode(sig.value)
  if not raw or #raw ~= 64 then return nil, "the signature is not 64 bytes of base64" end
  local text, err = M.encode(st)
  if not text then return nil, "statement: " .. tostring(err) end
  if not pub:verify(text, raw) then return nil, "the signature does not verify" end
  return true
end

--- The signature fields an answer may carry, for the strict answer schema.
M.SIGNATURE_FIELDS = { alg = true, key_id = true, value = true }

--- Whether sig has the shape of a signature object (nil, why when not).
function M.signature_shape(sig)
  if type(sig) ~= "table" then return nil, "signature is not an object" end
  for k in pairs(sig) do
    if not M.SIGNATURE_FIELDS[k] then return nil, "signature has an unknown field " .. tostring(k):sub(1, 64) end
  end
  if
    sig.alg ~= M.ALG
    or type(sig.key_id) ~= "string"
    or #sig.key_id ~= 64
    or type(sig.value) ~= "string"
    or #sig.value > 128
  then
    return nil, "signature is not {alg=ed25519, key_id, value}"
  end
  return true
end

return M
