/*
 * fuzz_yaml.c: libFuzzer target for the YAML loader (yaml.c, libyaml events
 * turned into Lua values) called as the configuration loader calls it:
 * yaml.load(text) must return a value, or nil and a message; it must never
 * raise. A loaded value is walked completely (anchors and aliases may share
 * tables; the walk stops at tables already seen).
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local yaml = require 'mpic.core.yaml'\n"
    "local type, pairs, tostring = type, pairs, tostring\n"
    "local function walk(v, seen)\n"
    "  if type(v) ~= 'table' or seen[v] then return end\n"
    "  seen[v] = true\n"
    "  for k, x in pairs(v) do tostring(k); walk(k, seen); walk(x, seen) end\n"
    "end\n"
    "return function(s)\n"
    "  local v, err = yaml.load(s)\n"
    "  if err ~= nil then\n"
    "    if v ~= nil or type(err) ~= 'string' or err == '' then\n"
    "      error('yaml.load broke its contract: ' .. tostring(v) .. ', ' .. tostring(err))\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  walk(v, {})\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
