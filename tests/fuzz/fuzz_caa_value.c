/*
 * fuzz_caa_value.c: libFuzzer target for the CAA issue-value parser
 * (caa.parse_issue_value in lua/mpic/caa.lua). Contract: a table
 * {issuer=, params={ {tag=, value=} ... }} or nil and a reason string; it
 * never raises. On success the grammar of REFERENCE §3.4 is re-checked
 * independently: the issuer is empty or dot-separated LDH labels, each tag is
 * LDH and each value holds only %x21-3A / %x3C-7E.
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local caa = require 'mpic.caa'\n"
    "local type, ipairs, tostring, error = type, ipairs, tostring, error\n"
    "local function ldh(s)\n"
    "  return s:match('^[%w]$') ~= nil or (s:match('^[%w][%w%-]*[%w]$') ~= nil)\n"
    "end\n"
    "return function(s)\n"
    "  local r, why = caa.parse_issue_value(s)\n"
    "  if r == nil then\n"
    "    if type(why) ~= 'string' or why == '' then error('nil without a reason') end\n"
    "    return\n"
    "  end\n"
    "  if type(r) ~= 'table' or type(r.issuer) ~= 'string' or type(r.params) ~= 'table' then\n"
    "    error('bad result shape') end\n"
    "  if r.issuer ~= '' then\n"
    "    if r.issuer:sub(1, 1) == '.' or r.issuer:sub(-1) == '.' or r.issuer:find('..', 1, true) "
    "then\n"
    "      error('issuer with a bad dot accepted: ' .. r.issuer) end\n"
    "    for l in r.issuer:gmatch('[^.]+') do\n"
    "      if not ldh(l) then error('bad issuer label accepted: ' .. r.issuer) end\n"
    "    end\n"
    "  end\n"
    "  for _, p in ipairs(r.params) do\n"
    "    if type(p.tag) ~= 'string' or not ldh(p.tag) then error('bad tag accepted: ' .. "
    "tostring(p.tag)) end\n"
    "    if type(p.value) ~= 'string' or p.value:find('[^\\33-\\58\\60-\\126]') then\n"
    "      error('bad value accepted: ' .. tostring(p.value)) end\n"
    "  end\n"
    "  -- matching with the issuer must not raise either\n"
    "  caa.param_values(r, 'accounturi')\n"
    "  caa.accounturi_ok(r, {'https://ca.example/acct/1'})\n"
    "  caa.validationmethods_ok(r, 'acme-dns-01')\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
