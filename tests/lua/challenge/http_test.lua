-- acme-http-01 and website-change on a fake fetch (REFERENCE §2.2, §2.3, §4.4).
local T = require "mpic.testing"
local F = require "fake"
local target = require "mpic.target"
local util = require "mpic.core.util"
local case, eq = T.case, T.eq

local function tgt(s) return assert(target.normalise(s, { allow_reserved = true })) end
local function run(method, tname, params, routes)
  local probe = F.probe { routes = routes }
  return require("mpic.challenge." .. method).check(tgt(tname), params, probe), probe
end

local KA = "challenge_111"
local U = "http://example.com/.well-known/acme-challenge/tok"
local HP = { token = "tok", key_authorization = KA }

case("http01_expected_content_passes_with_details", function()
  local r, probe = run("acme-http-01", "example.com", HP, { [U] = { status = 200, body = KA .. "\r\n" } })
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.errors, nil)
  eq(r.details.response_url, U)
  eq(r.details.response_status_code, 200)
  eq(r.details.response_page, util.base64(KA .. "\r\n"))
  eq(probe.log.fetch[1].opts.max_bytes, 128)
  eq(probe.log.fetch[1].opts.max_redirects, 10)
end)
case("http01_url_inserts_well_known_path", function()
  local _, probe = run("acme-http-01", "example.com", HP, {})
  eq(probe.log.fetch[1].url, U)
end)
case("http01_ipv6_host_bracketed_ipv4_unchanged", function()
  local _, p6 = run("acme-http-01", "2001:db8::1", HP, {})
  eq(p6.log.fetch[1].url, "http://[2001:db8::1]/.well-known/acme-challenge/tok")
  local _, p4 = run("acme-http-01", "192.0.2.1", HP, {})
  eq(p4.log.fetch[1].url, "http://192.0.2.1/.well-known/acme-challenge/tok")
end)
case("http01_404_fails_with_http_error", function()
  local r = run("acme-http-01", "example.com", HP, { [U] = { status = 404, body = "nf" } })
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors, {
    {
      error_type = "mpic_error:http",
      error_message = "An HTTP error occurred: Response status 404, Response reason: Not Found",
    },
  })
end)
case("http01_connection_error_and_timeout_are_errors", function()
  local r = run("acme-http-01", "example.com", HP, {})
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:lookup")
  local r2 = run(
    "acme-http-01",
    "example.com",
    HP,
    { [U] = { fail = "timeout", detail = "Timeout during connect (likely firewall problem)" } }
  )
  eq(r2.completed, false)
  T.contains(r2.errors[1].error_message, "Timeout during connect")
end)
case("http01_bad_redirect_is_completed_failure", function()
  local hist = { { status_code = 303, url = "http://example.com/other" } }
  local r = run(
    "acme-http-01",
    "example.com",
    HP,
    { [U] = { fail = "redirect", detail = "received disallowed redirect status code", history = hist } }
  )
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors[1].error_type, "mpic_error:redirect:invalid")
  T.contains(r.errors[1].error_message, "Redirect code: 303, target: http://example.com/other")
  eq(r.details.response_history, hist)
end)
case("http01_redirect_history_reported", function()
  local hist =
    { { status_code = 301, url = "http://example.com/a" }, { status_code = 302, url = "http://example.com/b" } }
  local r = run(
    "acme-http-01",
    "example.com",
    HP,
    { [U] = { status = 200, body = KA, history = hist, url = "http://example.com/b" } }
  )
  eq(r.passed, true)
  eq(r.details.response_history, hist)
  eq(r.details.response_url, "http://example.com/b")
end)
case("http01_exact_body_required", function()
  eq(run("acme-http-01", "example.com", HP, { [U] = { body = "eXtRaStUfF" .. KA .. "MoReStUfF" } }).passed, false)
  eq(run("acme-http-01", "example.com", HP, { [U] = { body = " " .. KA } }).passed, false)
  eq(run("acme-http-01", "example.com", HP, { [U] = { body = KA:upper() } }).passed, false)
  eq(run("acme-http-01", "example.com", HP, { [U] = { body = KA .. " \t\n\u{A0}" } }).passed, true)
end)
case("http01_mismatch_detail_names_both_values", function()
  local r = run("acme-http-01", "example.com", HP, { [U] = { body = "other%s%d" } })
  eq(
    r.details.reason,
    'The key authorization file from the server did not match this challenge. Expected "' .. KA .. '" (got "other%s%d")'
  )
end)
case("http01_body_of_128_bytes_or_more_fails", function()
  local r = run("acme-http-01", "example.com", HP, { [U] = { body = string.rep("a", 128) } })
  eq(r.passed, false)
  eq(r.completed, true)
  eq(run("acme-http-01", "example.com", HP, { [U] = { body = string.rep("a", 4000) } }).passed, false)
end)
case("http01_token_with_path_characters_rejected", function()
  local r, probe = run("acme-http-01", "example.com", { token = "../x", key_authorization = KA }, {})
  eq(r.passed, false)
  eq(r.completed, false)
  eq(#probe.log.fetch, 0)
end)

-- website-change
local function wc(body, extra, status)
  local p = { challenge_value = "challenge-value", http_token_path = "validation-doc.txt" }
  for k, v in pairs(extra or {}) do
    p[k] = v
  end
  local url = (p.url_scheme or "http") .. "://example.com/.well-known/pki-validation/" .. p.http_token_path
  return run("website-change", "example.com", p, { [url] = { status = status or 200, body = body } })
end
case("website_change_substring_passes", function() eq(wc("eXtRaStUfFchallenge-valueMoReStUfF").passed, true) end)
case("website_change_other_value_fails", function()
  local r = wc("eXtRaStUfFchallenge-bad-valueMoReStUfF")
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("website_change_case_sensitive_unless_disabled", function()
  eq(wc("CHALLENGE-VALUE").passed, false)
  eq(wc("CHALLENGE-VALUE", { require_exact_case = false }).passed, true)
end)
case("website_change_https_scheme_and_20_redirects", function()
  local r, probe = wc("challenge-value", { url_scheme = "https" })
  eq(r.passed, true)
  eq(probe.log.fetch[1].opts.https, true)
  eq(probe.log.fetch[1].opts.max_redirects, 20)
end)
case("website_change_reads_max_100_or_value_length", function()
  local _, probe = wc("challenge-value")
  eq(probe.log.fetch[1].opts.max_bytes, 100)
  local long = string.rep("a", 150)
  local r, p2 = wc(long, { challenge_value = long })
  eq(p2.log.fetch[1].opts.max_bytes, 150)
  eq(r.passed, true)
  eq(r.details.response_page, util.base64(long))
end)
case(
  "website_change_value_beyond_read_window_fails",
  function() eq(wc(string.rep("x", 120) .. "challenge-value").passed, false) end
)
case("website_change_non_200_fails_http", function()
  local r = wc("challenge-value", nil, 500)
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors[1].error_type, "mpic_error:http")
end)
case(
  "website_change_regex_search_passes",
  function() eq(wc("challenge_1234", { challenge_value = "", match_regex = "^challenge_[0-9]*$" }).passed, true) end
)
case("website_change_regex_no_match_fails", function()
  local r = wc("challenge_1234", { challenge_value = "", match_regex = "^challenge_[2-9]*$" })
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("website_change_regex_matches_across_newlines_and_tabs", function()
  local rx = "ABC123[\\s]+(example.com|example.org|example.net)[\\s]+XYZ789"
  eq(wc("ABC123\n\texample.org\t\nXYZ789", { challenge_value = "ABC", match_regex = rx }).passed, true)
end)
case(
  "website_change_value_and_regex_both_required",
  function() eq(wc("challenge_1234", { challenge_value = "nothere", match_regex = "challenge_" }).passed, false) end
)
case("website_change_invalid_regex_is_parameter_error", function()
  local r = wc("challenge_1234", { challenge_value = "", match_regex = "(unclosed" })
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:parameter")
end)
case("website_change_empty_value_without_regex_rejected", function()
  local r = wc("anything", { challenge_value = "" })
  eq(r.passed, false)
  eq(r.completed, false)
  local issues = require("mpic.challenge.website-change").validate_params({ challenge_value = "" })
  eq(issues[1].issue_type, "empty-challenge-value")
end)
case("website_change_ipv6_target_bracketed", function()
  local p = { challenge_value = "v", http_token_path = "t" }
  local _, probe = run("website-change", "2001:db8::1", p, {})
  eq(probe.log.fetch[1].url, "http://[2001:db8::1]/.well-known/pki-validation/t")
end)
