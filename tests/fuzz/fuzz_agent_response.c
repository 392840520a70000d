/*
 * fuzz_agent_response.c: libFuzzer target for the coordinator's parser of a
 * remote agent's answer (agent_client.parse in lua/mpic/service/agent_client.lua).
 * An agent is authenticated by mutual TLS, but one compromised or broken
 * perspective must not take a validation down: parse must never raise, must
 * give a result table whose passed implies completed, and the result must
 * still encode as JSON (it goes into the API response and the audit line).
 * The first input byte picks the HTTP status and check type; the rest is
 * the body.
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local client = require 'mpic.service.agent_client'\n"
    "local util = require 'mpic.core.util'\n"
    "local type, tostring, error, byte = type, tostring, error, string.byte\n"
    "local P = {id = 'fra', rir = require('mpic.config').rir('RIPE'), agent = {url = "
    "'https://fra.example:8443'}}\n"
    "local STATUS = {200, 500, 400, 0}\n"
    "return function(s)\n"
    "  if #s == 0 then return end\n"
    "  local sel = byte(s, 1)\n"
    "  local ct = (sel & 4) ~= 0 and 'caa' or 'dcv'\n"
    "  local r = client.parse(P, ct, {status = STATUS[(sel & 3) + 1], body = s:sub(2)})\n"
    "  if type(r) ~= 'table' or type(r.passed) ~= 'boolean' or type(r.completed) ~= 'boolean' "
    "then\n"
    "    error('parse: malformed result') end\n"
    "  if r.passed and not r.completed then error('parse: passed without completed') end\n"
    "  if type(r.errors) ~= 'table' then error('parse: no errors list') end\n"
    "  local text, why = util.json_encode(r)\n"
    "  if not text then error('parse: result does not encode as JSON: ' .. tostring(why)) end\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
