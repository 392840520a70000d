-- RFC 8657 accounturi / validationmethods (REFERENCE §3.5, §3.8).
local T = require "mpic.testing"
local caa = require "mpic.caa"
local case, eq = T.case, T.eq

local URI = "https://letsencrypt.org/acct/reg/123"
local function permitted(value, accounts, method)
  return (
    caa.decide(
      { { flags = 0, tag = "issue", value = value } },
      { caa_domains = { "letsencrypt.org" }, account_uris = accounts, method = method }
    )
  )
end
local LE = "letsencrypt.org"

-- accounturi
case("caa_accounturi_absent_passes", function() eq(permitted(LE, { URI }, "http-01"), true) end)
case(
  "caa_accounturi_only_other_params_passes",
  function() eq(permitted(LE .. "; validationmethods=http-01", { URI }, "http-01"), true) end
)
case(
  "caa_accounturi_exact_passes",
  function() eq(permitted(LE .. "; accounturi=" .. URI, { URI }, "http-01"), true) end
)
case(
  "caa_accounturi_with_validationmethods_passes",
  function() eq(permitted(LE .. "; accounturi=" .. URI .. "; validationmethods=http-01", { URI }, "http-01"), true) end
)
case("caa_accounturi_matches_any_alias", function()
  local aliases = { "https://a.example/acct/1", "https://b.example/acct/1", URI }
  eq(permitted(LE .. "; accounturi=" .. URI, aliases, "http-01"), true)
  eq(permitted(LE .. "; accounturi=https://a.example/acct/1", aliases, "http-01"), true)
end)
case(
  "caa_accounturi_different_id_fails",
  function() eq(permitted(LE .. "; accounturi=https://letsencrypt.org/acct/reg/321", { URI }, "http-01"), false) end
)
case(
  "caa_accounturi_no_alias_matches_fails",
  function()
    eq(permitted(LE .. "; accounturi=" .. URI, { "https://a.example/1", "https://b.example/1" }, "http-01"), false)
  end
)
case("caa_accounturi_non_uri_fails", function()
  eq(permitted(LE .. "; accounturi=\\invalid\u{1F60E}/123456", { URI }, "http-01"), false)
  eq(permitted(LE .. "; accounturi=not-a-uri", { "not-a-uri" }, "http-01"), false)
end)
case("caa_accounturi_empty_value_fails", function() eq(permitted(LE .. "; accounturi=", { URI }, "http-01"), false) end)
case("caa_accounturi_twice_fails", function()
  eq(permitted(LE .. "; accounturi=; accounturi=", { URI }, "http-01"), false)
  eq(permitted(LE .. "; accounturi=; accounturi=" .. URI, { URI }, "http-01"), false)
  eq(permitted(LE .. "; accounturi=" .. URI .. "; accounturi=" .. URI, { URI }, "http-01"), false)
  eq(permitted(LE .. "; accounturi=" .. URI .. "; accounturi=https://x.example/1", { URI }, "http-01"), false)
end)
case("caa_accounturi_request_without_account_fails", function()
  eq(permitted(LE .. "; accounturi=" .. URI, nil, "http-01"), false)
  eq(permitted(LE .. "; accounturi=" .. URI, {}, "http-01"), false)
end)
case("caa_accounturi_tag_matched_case_insensitively", function()
  eq(permitted(LE .. "; AccountURI=https://letsencrypt.org/acct/reg/321", { URI }, "http-01"), false)
  eq(permitted(LE .. "; AccountURI=" .. URI, { URI }, "http-01"), true)
end)

-- validationmethods
case("caa_validationmethods_absent_passes", function() eq(permitted(LE, { URI }, "tls-alpn-01"), true) end)
case(
  "caa_validationmethods_only_accounturi_passes",
  function() eq(permitted(LE .. "; accounturi=" .. URI, { URI }, "dns-01"), true) end
)
case(
  "caa_validationmethods_http_only_passes_http",
  function() eq(permitted(LE .. "; validationmethods=http-01", { URI }, "http-01"), true) end
)
case("caa_validationmethods_list_passes_each_member", function()
  eq(permitted(LE .. "; validationmethods=http-01,dns-01", { URI }, "http-01"), true)
  eq(permitted(LE .. "; validationmethods=http-01,dns-01", { URI }, "dns-01"), true)
end)
case(
  "caa_validationmethods_list_fails_other_method",
  function() eq(permitted(LE .. "; validationmethods=http-01,dns-01", { URI }, "tls-alpn-01"), false) end
)
case(
  "caa_validationmethods_dns_only_fails_http",
  function() eq(permitted(LE .. "; validationmethods=dns-01", { URI }, "http-01"), false) end
)
case("caa_validationmethods_malformed_or_unknown_fail", function()
  eq(permitted(LE .. "; validationmethods=", { URI }, "http-01"), false)
  eq(permitted(LE .. "; validationmethods=,", { URI }, "http-01"), false)
  eq(permitted(LE .. "; validationmethods=tls-sni-01", { URI }, "http-01"), false)
  -- "howdy !" cannot even be parsed (space inside a value): the record is skipped
  eq(permitted(LE .. "; validationmethods=howdy !", { URI }, "http-01"), false)
  eq(permitted(LE .. "; validationmethods=howdy!", { URI }, "http-01"), false)
end)
case(
  "caa_validationmethods_unknown_label_ignored_when_another_matches",
  function() eq(permitted(LE .. "; validationmethods=future-99,http-01", { URI }, "http-01"), true) end
)
case(
  "caa_validationmethods_twice_fails",
  function() eq(permitted(LE .. "; validationmethods=http-01; validationmethods=http-01", { URI }, "http-01"), false) end
)
case(
  "caa_validationmethods_request_without_method_fails",
  function() eq(permitted(LE .. "; validationmethods=http-01", { URI }, nil), false) end
)
case("caa_method_names_map_to_labels", function()
  eq(caa.method_label("acme-http-01"), "http-01")
  eq(caa.method_label("acme-dns-01"), "dns-01")
  eq(caa.method_label("acme-tls-alpn-01"), "tls-alpn-01")
  eq(caa.method_label("dns-account-01"), "dns-account-01")
  eq(caa.method_label("dns-persistent"), "dns-persist-01")
  eq(caa.method_label("dns-change"), "ca-tbr-7")
  eq(caa.method_label("website-change"), "ca-tbr-18")
  eq(caa.method_label("http-01"), "http-01")
  eq(caa.method_label(nil), nil)
end)
case(
  "caa_ca_tbr_label_from_method_name_permits",
  function() eq(permitted(LE .. "; validationmethods=ca-tbr-7", { URI }, caa.method_label("dns-change")), true) end
)
case("caa_uri_syntax", function()
  eq(caa.is_uri("https://example.com/acct/123"), true)
  eq(caa.is_uri("acct:foo123@example.com"), true)
  eq(caa.is_uri("thiscanbeanything:bar@baz.com"), true)
  eq(caa.is_uri("noscheme/123"), false)
  eq(caa.is_uri("https://x/%zz"), false)
  eq(caa.is_uri(""), false)
end)
