-- issue-value parsing and issuer matching (REFERENCE §3.4, §3.7).
local T = require "mpic.testing"
local caa = require "mpic.caa"
local case, eq, ok = T.case, T.eq, T.ok

local function params_map(p)
  local m = {}
  for _, x in ipairs(p.params) do
    m[x.tag] = x.value
  end
  return m
end

local function valid(name, value, issuer, params)
  case(name, function()
    local p, err = caa.parse_issue_value(value)
    ok(p, "expected valid: " .. tostring(err))
    eq(p.issuer, issuer)
    if params then eq(params_map(p), params) end
  end)
end
local function invalid(name, value, why)
  case(name, function()
    local p, err = caa.parse_issue_value(value)
    eq(p, nil, "expected invalid: " .. value)
    if why then T.contains(err, why) end
  end)
end

-- Boulder, valid
valid("caa_parse_empty_value_is_empty_issuer", "", "", {})
valid("caa_parse_lone_semicolon_is_empty_issuer", ";", "", {})
valid("caa_parse_spaced_semicolon_is_empty_issuer", " ; ", "", {})
valid("caa_parse_plain_issuer", "letsencrypt.org", "letsencrypt.org", {})
valid("caa_parse_issuer_trailing_semicolon", "letsencrypt.org;", "letsencrypt.org", {})
valid("caa_parse_issuer_semicolon_trailing_spaces", "letsencrypt.org;   ", "letsencrypt.org", {})
valid(
  "caa_parse_wsp_around_issuer_and_params",
  "  letsencrypt.org\t;foo=bar;baz=bar",
  "letsencrypt.org",
  { foo = "bar", baz = "bar" }
)
valid(
  "caa_parse_tab_before_issuer_space_after",
  "\tletsencrypt.org ;foo=bar;baz=bar",
  "letsencrypt.org",
  { foo = "bar", baz = "bar" }
)
valid(
  "caa_parse_empty_param_value_and_wsp_around_equals",
  "letsencrypt.org; foo=; baz =\tbar",
  "letsencrypt.org",
  { foo = "", baz = "bar" }
)
valid(
  "caa_parse_tab_value_then_semicolon",
  "letsencrypt.org; foo=\t; baz =\tbar",
  "letsencrypt.org",
  { foo = "", baz = "bar" }
)
valid(
  "caa_parse_commas_and_equals_in_value",
  "letsencrypt.org; foo=b1,b2,b3\t; baz =\t\ta=b\t",
  "letsencrypt.org",
  { foo = "b1,b2,b3", baz = "a=b" }
)
case("caa_parse_duplicate_tags_kept_in_order", function()
  local p = assert(caa.parse_issue_value("letsencrypt.org; a=1; a=2"))
  eq(p.params, { { tag = "a", value = "1" }, { tag = "a", value = "2" } })
end)
valid(
  "caa_parse_digit_tag_and_hyphen_value",
  "letsencrypt.org; 1=2; baz=a-b",
  "letsencrypt.org",
  { ["1"] = "2", baz = "a-b" }
)
-- Boulder, invalid
invalid("caa_parse_space_inside_value_after_equals", "letsencrypt.org; baz =\t\ta = b\t", "value contains disallowed")
invalid("caa_parse_tab_inside_value", "letsencrypt.org; baz=a=\tb", "value contains disallowed")
invalid("caa_parse_spaces_inside_value", "letsencrypt.org; ab=1 2 3", "value contains disallowed")
invalid("caa_parse_non_ascii_value", "letsencrypt.org; foo=a\u{2615}b", "value contains disallowed")
invalid(
  "caa_parse_missing_semicolon_between_params",
  "letsencrypt.org; foo=b1,b2,b3 baz=a",
  "value contains disallowed"
)
invalid("caa_parse_parameter_without_equals", "letsencrypt.org; baz =\t\ta;b\t", "not formatted as tag=value")
invalid("caa_parse_underscore_in_tag", "letsencrypt.org; a_b=123", "tag contains disallowed")
-- mpic departs from Boulder: the RFC grammar allows an inner hyphen in a tag
valid(
  "caa_parse_inner_hyphen_tag_is_valid",
  "letsencrypt.org; 1=2; a-b=c",
  "letsencrypt.org",
  { ["1"] = "2", ["a-b"] = "c" }
)

-- Open MPIC, well-formed
valid("caa_openmpic_plain", "ca111.com", "ca111.com")
valid("caa_openmpic_padded", "  ca111.com  ", "ca111.com")
valid("caa_openmpic_uppercase_issuer", "Ca111.com", "Ca111.com")
valid("caa_openmpic_leading_digit", "1ca111.com", "1ca111.com")
valid("caa_openmpic_inner_hyphens", "c-a-111.com", "c-a-111.com")
valid("caa_openmpic_subdomain", "sub.ca111.com", "sub.ca111.com")
valid("caa_openmpic_trailing_semicolon", "ca111.com;", "ca111.com")
valid("caa_openmpic_policy", "ca111.com; policy=ev", "ca111.com", { policy = "ev" })
valid(
  "caa_openmpic_two_params",
  "ca111.com; policy=ev;account=12345",
  "ca111.com",
  { policy = "ev", account = "12345" }
)
valid(
  "caa_openmpic_spaced_params",
  "ca111.com; policy = ev; account = 12345",
  "ca111.com",
  { policy = "ev", account = "12345" }
)
valid(
  "caa_openmpic_multi_hyphen_tag",
  "ca111.com; validation---method=http-01",
  "ca111.com",
  { ["validation---method"] = "http-01" }
)
valid("caa_openmpic_punctuation_value", "ca111.com; account=!@_[}#$z", "ca111.com", { account = "!@_[}#$z" })
valid(
  "caa_openmpic_empty_value_then_param",
  "ca111.com; policy=; account=12345",
  "ca111.com",
  { policy = "", account = "12345" }
)
valid("caa_openmpic_params_without_issuer", "; policy=ev", "", { policy = "ev" })
-- Open MPIC, rejected
for i, v in ipairs {
  ".example.com",
  "ca111.com.",
  "example..com",
  "ex@mple.com!",
  "sub.-example.com",
  "example-.com",
  "; -policy=ev",
  "; policy-=ev",
  "; policy",
  "; policy=ev;account=12;345",
  "; account=\0",
  "; queensr\u{FF}che=ev",
  "; policy=m\u{F6}tleycr\u{FC}e",
  "; cool policy=ev",
  "; policy=ev cool",
  "; policy=ev;",
  "; policy=ev;;account=12345",
} do
  invalid(string.format("caa_openmpic_rejects_%02d_%s", i, (v:gsub("[^%w]", "_"))), v)
end

-- Matching with configured domain ca111.org
local function rrs(...)
  local out = {}
  for _, v in ipairs { ... } do
    out[#out + 1] = { flags = 0, tag = "issue", value = v }
  end
  return out
end
local function decide(set) return (caa.decide(set, { caa_domains = { "ca111.org" }, method = "http-01" })) end
case("caa_match_exact_issuer_permits", function() eq(decide(rrs("ca111.org")), true) end)
case("caa_match_one_of_two_records_permits", function() eq(decide(rrs("ca111.org", "ca222.com")), true) end)
case("caa_match_padded_issuer_permits", function() eq(decide(rrs("  ca111.org  ")), true) end)
case("caa_match_issuer_case_insensitive_permits", function() eq(decide(rrs("Ca111.org")), true) end)
case(
  "caa_match_config_domain_case_insensitive_permits",
  function() eq((caa.decide(rrs("ca111.org"), { caa_domains = { "CA111.ORG" } })), true) end
)
case(
  "caa_match_unknown_params_ignored_permits",
  function() eq(decide(rrs("ca111.org; policy=ev; account=12345")), true) end
)
case("caa_match_empty_value_denies", function() eq(decide(rrs("")), false) end)
case("caa_match_semicolon_denies", function() eq(decide(rrs(";")), false) end)
case("caa_match_params_only_denies", function() eq(decide(rrs(";policy=ev")), false) end)
case("caa_match_other_ca_denies", function() eq(decide(rrs("ca222.org")), false) end)
case("caa_match_two_other_cas_deny", function() eq(decide(rrs("ca333.net", "ca444.com")), false) end)
case(
  "caa_match_issuer_named_in_param_value_denies",
  function() eq(decide(rrs("ca222.org; favorite-ca=ca111.org")), false) end
)
case("caa_match_malformed_param_denies", function() eq(decide(rrs("ca111.org; policy")), false) end)
case("caa_match_malformed_value_denies", function() eq(decide(rrs("ca111.org; account=123f\u{F6}ur5")), false) end)
case("caa_empty_record_beside_authorizing_record_permits", function() eq(decide(rrs(";", "ca111.org")), true) end)
case("caa_only_malformed_issue_records_deny", function() eq(decide(rrs("ca111.org; a_b=1", "ca111.org;;")), false) end)
case(
  "caa_no_issue_property_permits",
  function() eq(decide({ { flags = 0, tag = "iodef", value = "mailto:x@ca111.org" } }), true) end
)
case(
  "caa_critical_known_tag_is_fine",
  function()
    eq(
      decide({ { flags = 128, tag = "issue", value = "ca111.org" }, { flags = 128, tag = "iodef", value = "x" } }),
      true
    )
  end
)
case(
  "caa_unknown_critical_tag_forbids",
  function()
    eq(
      decide({ { flags = 0, tag = "issue", value = "ca111.org" }, { flags = 128, tag = "future", value = "x" } }),
      false
    )
  end
)
case("caa_unknown_certificate_type_raises", function()
  T.raises(
    function() caa.decide(rrs("ca111.org"), { certificate_type = "code", caa_domains = { "ca111.org" } }) end,
    "unknown certificate type"
  )
end)
case(
  "caa_presentation_escapes_quotes_and_bytes",
  function() eq(caa.presentation({ flags = 128, tag = "issue", value = 'a"b\\c\0' }), '128 issue "a\\"b\\\\c\\000"') end
)
