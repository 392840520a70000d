/*
 * fuzz_request.c: libFuzzer target for the Open MPIC request validation
 * (lua/mpic/request.lua). The input is a request body: it is decoded with
 * util.json_decode (a body that is not JSON ends there, as in the server)
 * and handed to request.validate with a fixed context built from a small
 * configuration (config.parse) and the built-in challenge registry
 * (challenges.load), once with reserved addresses refused and once allowed.
 * validate must never raise and must return either a normalised request or
 * nil and a non-empty list of {issue_type, message}.
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local util = require 'mpic.core.util'\n"
    "local config = require 'mpic.config'\n"
    "local challenges = require 'mpic.challenges'\n"
    "local quorum = require 'mpic.quorum'\n"
    "local request = require 'mpic.request'\n"
    "local type, ipairs, tostring, error, math_type = type, ipairs, tostring, error, math.type\n"
    "local function cfg_text(allow)\n"
    "  return table.concat({\n"
    "    'issuer: {caa_domains: [ca.example], account_uri_prefixes: "
    "[\"https://ca.example/acct/\"]}',\n"
    "    'policy: policies/br.lua',\n"
    "    'defaults: {perspective_count: 5, max_attempts: 2, timeout_ms: 10000}',\n"
    "    'network: {allow_reserved_ips: ' .. tostring(allow) .. '}',\n"
    "    'primary: p0',\n"
    "    'perspectives:',\n"
    "    '  - {id: p0, rir: ARIN, location: {lat: 39.0, lon: -77.5}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p1, rir: RIPE, location: {lat: 50.1, lon: 8.7}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p2, rir: APNIC, location: {lat: 1.35, lon: 103.8}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p3, rir: ARIN, location: {lat: 37.4, lon: -122.1}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p4, rir: LACNIC, location: {lat: -23.5, lon: -46.6}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p5, rir: AFRINIC, location: {lat: -33.9, lon: 18.4}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "    '  - {id: p6, rir: RIPE, location: {lat: 59.3, lon: 18.1}, resolvers: "
    "[\"127.0.0.1:53\"]}',\n"
    "  }, '\\n')\n"
    "end\n"
    "local registry = challenges.load()\n"
    "if #registry.errors > 0 then error('challenge load: ' .. "
    "challenges.format_errors(registry)[1]) end\n"
    "local date = '2026-11-28'\n"
    "local ctxs = {}\n"
    "for _, allow in ipairs({false, true}) do\n"
    "  local cfg = assert(config.parse(cfg_text(allow), '" MPIC_SOURCE_DIR
    "/fuzz.yaml', '" MPIC_SOURCE_DIR "'))\n"
    "  ctxs[#ctxs + 1] = {cfg = cfg, registry = registry, remotes = 6, date = date,\n"
    "    now = 1795824000, min_remotes = quorum.min_remotes(date)}\n"
    "end\n"
    "local function check(out, issues, s)\n"
    "  if out ~= nil then\n"
    "    if type(out) ~= 'table' or issues ~= nil then error('validate: bad success shape') end\n"
    "    if math_type(out.perspective_count) ~= 'integer' or out.perspective_count < 2\n"
    "       or out.perspective_count > 6 then error('validate: perspective_count out of range') "
    "end\n"
    "    if out.max_attempts < 1 or out.max_attempts > request.ABSOLUTE_MAX_ATTEMPTS then\n"
    "      error('validate: max_attempts out of range') end\n"
    "    if type(out.target) ~= 'table' then error('validate: no target') end\n"
    "    return\n"
    "  end\n"
    "  if type(issues) ~= 'table' or #issues == 0 then error('validate: nil without issues') end\n"
    "  for _, i in ipairs(issues) do\n"
    "    if type(i.issue_type) ~= 'string' or type(i.message) ~= 'string' then\n"
    "      error('validate: malformed issue') end\n"
    "  end\n"
    "end\n"
    "return function(s)\n"
    "  local body = util.json_decode(s)\n"
    "  if body == nil then return end\n"
    "  for _, ctx in ipairs(ctxs) do\n"
    "    local out, issues = request.validate(body, ctx)\n"
    "    check(out, issues, s)\n"
    "  end\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
