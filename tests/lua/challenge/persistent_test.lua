-- dns-persistent (REFERENCE §2.8) on a fake resolver.
local T = require "mpic.testing"
local F = require "fake"
local target = require "mpic.target"
local persist = require "mpic.challenge.dns-persistent"
local case, eq = T.case, T.eq

local ACCT = "https://ca.example/acct/123"
local NOW = 1800000000
local function run(tname, records, params, cfg)
  local t = assert(target.normalise(tname, { allow_reserved = true }))
  local name = t.kind == "ip" and ("_ip-validation-persist." .. target.reverse_name(t.bytes))
    or ("_validation-persist." .. t.value)
  local txt = {}
  for i, v in ipairs(records) do
    txt[i] = type(v) == "table" and F.txt(table.unpack(v)) or F.txt(v)
  end
  local probe = F.probe { zone = { [name] = { TXT = txt } }, config = cfg or { now = NOW } }
  return persist.check(t, params or { issuer_domain_names = { "ca.example" }, expected_account_uri = ACCT }, probe),
    probe
end

case("persist_valid_record_passes", function()
  local r, probe = run("example.com", { "ca.example; accounturi=" .. ACCT })
  eq(r.passed, true)
  eq(r.completed, true)
  eq(probe.log.dns, { "_validation-persist.example.com/TXT" })
end)
case(
  "persist_issuer_and_tags_case_insensitive",
  function()
    eq(run("example.com", { "CA.Example; AccountURI=" .. ACCT .. "; PersistUntil=" .. (NOW + 10) }).passed, true)
  end
)
case(
  "persist_split_strings_are_joined",
  function() eq(run("example.com", { { "ca.example; accounturi=", ACCT } }).passed, true) end
)
case(
  "persist_accounturi_compared_case_sensitively",
  function() eq(run("example.com", { "ca.example; accounturi=" .. ACCT:upper() }).passed, false) end
)
case(
  "persist_other_issuer_fails",
  function() eq(run("example.com", { "other.example; accounturi=" .. ACCT }).passed, false) end
)
case(
  "persist_unknown_parameters_ignored",
  function() eq(run("example.com", { "ca.example; foo=bar; accounturi=" .. ACCT }).passed, true) end
)
for i, v in ipairs {
  ";;;",
  "ca.example",
  "ca.example;",
  "ca.example; =value",
  "ca.example; accounturi",
  "ca.example; persistuntil=" .. (NOW + 10),
  "ca.example; bad; accounturi=" .. ACCT,
  "ca.example; accounturi=" .. ACCT .. "; bad",
  "ca.example; accounturi=" .. ACCT .. "; accounturi=" .. ACCT,
  "ca.example; accounturi=" .. ACCT .. "; persistuntil=1; persistuntil=" .. (NOW + 10),
  "ca.example; accounturi=" .. ACCT .. "; persistUntil=" .. (NOW + 10) .. "foo",
} do
  case(string.format("persist_malformed_record_%02d_fails", i), function()
    local r = run("example.com", { v })
    eq(r.passed, false, v)
    eq(r.completed, true)
  end)
end
case("persist_expired_persist_until_fails", function()
  eq(run("example.com", { "ca.example; accounturi=" .. ACCT .. "; persistUntil=" .. (NOW - 1) }).passed, false)
  eq(run("example.com", { "ca.example; accounturi=" .. ACCT .. "; persistUntil=" .. NOW }).passed, true)
end)
case("persist_wildcard_requires_policy_wildcard", function()
  eq(run("*.example.com", { "ca.example; accounturi=" .. ACCT }).passed, false)
  eq(run("*.example.com", { "ca.example; accounturi=" .. ACCT .. "; policy=WildCard" }).passed, true)
end)
case(
  "persist_wildcard_policy_rule_can_be_switched_off",
  function()
    eq(
      run(
        "*.example.com",
        { "ca.example; accounturi=" .. ACCT },
        nil,
        { now = NOW, persist_require_wildcard_policy = false }
      ).passed,
      true
    )
  end
)
case(
  "persist_any_record_may_satisfy",
  function()
    eq(
      run(
        "example.com",
        { "junk", "ca.example; accounturi=https://ca.example/acct/999", "ca.example; accounturi=" .. ACCT }
      ).passed,
      true
    )
  end
)
case("persist_accepts_opaque_account_uris", function()
  for _, a in ipairs { "acct:foo123@example.com", "https://example.com/acct/123", "thiscanbeanything:bar@baz.com" } do
    local r = run(
      "example.com",
      { "ca.example; accounturi=" .. a },
      { issuer_domain_names = { "ca.example" }, expected_account_uri = a }
    )
    eq(r.passed, true, a)
  end
end)
case("persist_bad_parameters_are_parameter_errors", function()
  local r = run("example.com", {}, { issuer_domain_names = {}, expected_account_uri = ACCT })
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:parameter")
  r = run("example.com", {}, { issuer_domain_names = { "ca.example" }, expected_account_uri = "not a uri" })
  eq(r.completed, false)
end)
case("persist_nodata_fails_completed", function()
  local r = run("example.com", {})
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("persist_ip_target_uses_reverse_zone", function()
  local r, probe = run("192.0.2.7", { "ca.example; accounturi=" .. ACCT })
  eq(r.passed, true)
  eq(probe.log.dns, { "_ip-validation-persist.7.2.0.192.in-addr.arpa/TXT" })
end)
