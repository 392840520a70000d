-- mpic.error_types owns whether a probe failure kind is a definite answer
-- ("completed"): the table comes from core/errors.h through mpic.core.errors,
-- and the checkers' helpers ask it instead of deciding again.
local T = require "mpic.testing"
local error_types = require "mpic.error_types"
local core_errors = require "mpic.core.errors"
local C = require "mpic.challenge._common"
local case, eq, ok = T.case, T.eq, T.ok

case("error_types_completed_follows_errors_h_for_a_few_kinds", function()
  eq(error_types.completed("nxdomain"), true)
  eq(error_types.completed("nodata"), true)
  eq(error_types.completed("http_status"), true)
  eq(error_types.completed("redirect"), true)
  eq(error_types.completed("timeout"), false)
  eq(error_types.completed("servfail"), false)
  eq(error_types.completed("connect"), false)
  eq(error_types.completed("cancelled"), false)
end)

case("error_types_an_unknown_kind_is_not_completed", function()
  eq(error_types.completed("no_such_kind"), false)
  eq(error_types.completed(nil), false)
  eq(error_types.completed("ok"), false, "ok is no failure kind")
end)

case("error_types_knows_every_kind_of_the_c_table", function()
  ok(#core_errors.names >= 17, "the C table has its kinds: " .. #core_errors.names)
  eq(error_types.kinds, core_errors.names)
  local seen = {}
  for _, k in ipairs(core_errors.names) do
    ok(not seen[k], "listed once: " .. k)
    seen[k] = true
    eq(type(core_errors.completed[k]), "boolean", k)
    eq(error_types.completed(k), core_errors.completed[k], k)
  end
  for k in pairs(core_errors.completed) do
    ok(seen[k], "in the list of names: " .. k)
  end
end)

case("error_types_the_dns_helper_takes_completed_from_the_table_for_every_kind", function()
  for _, kind in ipairs(error_types.kinds) do
    local probe = { dns = function() return nil, kind, "scripted " .. kind end }
    local r, res = C.dns_lookup("acme-dns-01", probe, "_acme-challenge.example.com", "TXT")
    eq(r, nil, kind)
    eq(res.passed, false, kind)
    eq(res.completed, error_types.completed(kind), "dns " .. kind)
  end
end)

case("error_types_the_http_helper_takes_completed_from_the_table_for_every_kind", function()
  for _, kind in ipairs(error_types.kinds) do
    for _, history in ipairs({ {}, { { status = 302, url = "http://a.example/" } } }) do
      local probe = { fetch = function() return nil, kind, "scripted " .. kind, history end }
      local r, res = C.http_fetch("acme-http-01", probe, "http://example.com/.well-known/acme-challenge/x", {})
      eq(r, nil, kind)
      eq(res.passed, false, kind)
      eq(res.completed, error_types.completed(kind), "http " .. kind .. " after " .. #history .. " redirects")
    end
  end
end)
