/*
 * fuzz_redirect.c: libFuzzer target for the redirect-target validation of
 * lua/mpic/fetch.lua (fetch.check_target: a Location header value resolved
 * against the current URL, REFERENCE §4.1), which goes through the URL
 * splitter (http_url.c via mpic.core.http.url_parse), the reserved-address
 * check and the public suffix lookup. The first input byte picks the base
 * URL and whether reserved addresses are allowed; the rest is the Location
 * value. Contract: a refusal string, or nil and the parsed URL; never a
 * raise. An accepted target is re-checked: scheme http or https, a host,
 * an allowed port, and no reserved IP unless allowed.
 * Uses: fuzz_lua.h.
 */
#include "fuzz_lua.h"

static const char setup[] =
    "local fetch = require 'mpic.fetch'\n"
    "local http = require 'mpic.core.http'\n"
    "local type, tostring, error, byte = type, tostring, error, string.byte\n"
    "local BASES = {\n"
    "  'http://example.com/.well-known/acme-challenge/tok',\n"
    "  'https://www.example.org:443/a/b?c=d',\n"
    "  'http://[2001:db8::1]/.well-known/acme-challenge/tok',\n"
    "  'http://192.0.2.7/x',\n"
    "}\n"
    "return function(s)\n"
    "  if #s == 0 then return end\n"
    "  local sel = byte(s, 1)\n"
    "  local base = BASES[(sel & 3) + 1]\n"
    "  local env = {allow_reserved = (sel & 4) ~= 0}\n"
    "  if (sel & 8) ~= 0 then env.http_port, env.https_port = 5002, 5001 end\n"
    "  local loc = s:sub(2)\n"
    "  local why, u = fetch.check_target(loc, base, env)\n"
    "  if why ~= nil then\n"
    "    if type(why) ~= 'string' or u ~= nil then error('bad refusal shape') end\n"
    "    return\n"
    "  end\n"
    "  if type(u) ~= 'table' then error('accepted without a URL') end\n"
    "  if u.scheme ~= 'http' and u.scheme ~= 'https' then error('scheme accepted: ' .. "
    "tostring(u.scheme)) end\n"
    "  if type(u.host) ~= 'string' or u.host == '' then error('empty host accepted') end\n"
    "  local p80, p443 = env.http_port or 80, env.https_port or 443\n"
    "  if u.port_explicit and u.port ~= p80 and u.port ~= p443 then error('port accepted: ' .. "
    "tostring(u.port)) end\n"
    "  if u.ip_family and not env.allow_reserved and http.is_reserved(u.host) then\n"
    "    error('reserved address accepted: ' .. u.host) end\n"
    "end\n";

FUZZ_LUA_TARGET(setup)
