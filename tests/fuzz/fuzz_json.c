/*
 * fuzz_json.c: libFuzzer target for util.json_decode (lua_util.c, jansson)
 * followed by util.json_encode of the result. Properties: decode returns a
 * value or nil and a message and never raises; a decoded value re-encodes,
 * and the encoding decodes again and re-encodes to the same text (a fixed
 * point after one round, with sorted keys). Encode refuses nesting deeper
 * than 64 levels, which decode accepts (jansson allows 2048): that refusal
 * is a clean "nil, err" and is tolerated here.
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local util = require 'mpic.core.util'\n"
    "local type, tostring, error = type, tostring, error\n"
    "return function(s)\n"
    "  local v, err = util.json_decode(s)\n"
    "  if v == nil then\n"
    "    if type(err) ~= 'string' then error('json_decode: nil without a message') end\n"
    "    return\n"
    "  end\n"
    "  local opts = {sort = true}\n"
    "  local e1, why = util.json_encode(v, opts)\n"
    "  if not e1 then\n"
    "    -- encode caps nesting at 64 levels while jansson decodes up to 2048:\n"
    "    -- that refusal is a clean error; any other refusal is a bug\n"
    "    if why == 'nesting too deep (or a cycle)' then return end\n"
    "    error('json_encode refused a decoded value: ' .. tostring(why))\n"
    "  end\n"
    "  local v2, err2 = util.json_decode(e1)\n"
    "  if v2 == nil then error('re-decode failed: ' .. tostring(err2) .. ' for ' .. e1) end\n"
    "  local e2 = util.json_encode(v2, opts)\n"
    "  if e2 ~= e1 then error('encoding is not stable: ' .. e1 .. ' vs ' .. tostring(e2)) end\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
