-- mpic.error_types: the closed vocabulary of Open MPIC `error_type` values
-- (REFERENCE §8.2, the TLS-ALPN keys of §2.6, and the `script` kind of a
-- check that raised). An agent may answer only with checker types; metrics
-- label anything outside the vocabulary "other", so that what a perspective
-- says cannot grow the number of series.
--
-- It also owns whether a probe failure kind (core/errors.h: timeout,
-- nxdomain, ...) is a definite answer, a "completed" check: the table comes
-- from C (mpic.core.errors), where the kinds are defined, and every checker
-- asks M.completed(kind) instead of deciding it again.
local core_errors = require "mpic.core.errors"

local M = {}

local CHECKER = {
  "mpic_error:caa_checker:lookup",
  "mpic_error:caa_checker:parameter",
  "mpic_error:caa_checker:script",
  "mpic_error:dcv_checker:lookup",
  "mpic_error:dcv_checker:parameter",
  "mpic_error:dcv_checker:script",
  "mpic_error:http",
  "mpic_error:redirect:invalid",
  "mpic_error:dcv_checker:tls_alpn:alpn_not_negotiated",
}
for _, k in ipairs({
  "extension_missing",
  "noncritical_alpn_extension",
  "no_single_san",
  "san_not_dnsname",
  "san_type_not_match",
  "san_not_hostname",
  "not_self_signed",
  "duplicate_extension",
  "malformed_acme_extension",
  "digest_mismatch",
}) do
  CHECKER[#CHECKER + 1] = "mpic_error:dcv_checker:tls_alpn:certificate:" .. k
end
local COORDINATOR = {
  "mpic_error:coordinator:communication",
  "mpic_error:coordinator:remote_check",
  "mpic_error:coordinator:too_many_failed_perspectives",
  "mpic_error:coordinator:cohort",
  "mpic_error:coordinator:cohort_selection",
  -- a perspective whose public key is configured answered without a valid
  -- signature over its result and evidence (mpic.evidence)
  "mpic_error:coordinator:signature",
}

M.checker, M.known = {}, {}
for _, t in ipairs(CHECKER) do
  M.checker[t], M.known[t] = true, true
end
for _, t in ipairs(COORDINATOR) do
  M.known[t] = true
end

--- The probe failure kinds of core/errors.h, in their order there.
M.kinds = {}
for i, k in ipairs(core_errors.names) do
  M.kinds[i] = k
end
local COMPLETED = {}
for k, v in pairs(core_errors.completed) do
  COMPLETED[k] = v
end

--- completed(kind): true when a probe failure of this kind is a definite
--- answer (evidence obtained: NXDOMAIN, NODATA, an HTTP status, a redirect
--- refused, ...), false when it is a lack of one (timeout, SERVFAIL,
--- connect, ...) and for any kind core/errors.h does not list (fail closed).
function M.completed(kind) return COMPLETED[kind] == true end

--- A failed, not completed check result carrying one error.
function M.failure(error_type, message, check_type)
  return {
    passed = false,
    completed = false,
    details = {},
    errors = { { error_type = error_type, error_message = message } },
    check_type = check_type,
  }
end

--- The metrics label of an error type: itself when known, else "other".
function M.label(t)
  if M.known[t] then return t end
  return "other"
end

return M
