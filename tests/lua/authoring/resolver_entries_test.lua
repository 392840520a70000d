-- Encrypted resolver entries in the configuration: the DoT and DoH forms are
-- accepted, malformed ones are refused with a message naming the form, and
-- resolver_ca is read relative to the configuration file.
local T = require "mpic.testing"
local config = require "mpic.config"
local case, eq, contains = T.case, T.eq, T.contains

local function parse(r, extra)
  local text = "issuer: {caa_domains: [ca.example]}\nperspectives:\n"
    .. '  - {id: a, rir: ARIN, location: {lat: 1, lon: 1}, resolvers: ["'
    .. r
    .. '"]'
    .. (extra or "")
    .. "}\n"
  return config.parse(text, "/etc/mpic/t.yaml")
end

case("config_accepts_dot_and_doh_resolvers", function()
  for _, good in ipairs({
    "tls://192.0.2.53",
    "tls://192.0.2.53:853#resolver.example",
    "tls://[2001:db8::53]:853#r.example",
    "tls://192.0.2.53#r.example",
    "https://resolver.example/dns-query",
    "https://resolver.example:8443/dns-query#192.0.2.53",
    "https://192.0.2.53/dns-query",
    "https://[2001:db8::53]/q#2001:db8::53",
  }) do
    local cfg, err = parse(good)
    eq(err, nil, good)
    eq(cfg.perspectives[1].resolvers[1], good)
  end
end)

case("config_refuses_malformed_encrypted_resolvers", function()
  local function refused(r)
    local cfg, err = parse(r)
    eq(cfg, nil, r)
    return err
  end
  contains(refused("tls://resolver.example"), "expected tls://IP[:PORT][#NAME]")
  contains(refused("tls://192.0.2.53:0#r.example"), "port 1-65535")
  contains(refused("tls://192.0.2.53:853#bad..name"), "is not a host name")
  contains(refused("tls://[192.0.2.53]:853"), "expected tls://IP")
  contains(refused("https://resolver.example/"), "names the query path")
  contains(refused("https://resolver.example/dns-query?dns=x"), "names the query path")
  contains(refused("https://resolver.example/dns-query#resolver.example"), "is not an IP address")
  contains(refused("http://resolver.example/dns-query"), "unknown scheme")
  contains(refused("quic://192.0.2.53"), "unknown scheme")
  contains(refused("tls://192.0.2.53#" .. string.rep("a", 600)), "longer than 512 bytes")
end)

case("config_resolver_ca_relative_to_the_file", function()
  local cfg = assert(parse("tls://192.0.2.53#r.example", ", resolver_ca: certs/resolvers.pem"))
  eq(cfg.perspectives[1].resolver_ca, "/etc/mpic/certs/resolvers.pem")
  cfg = assert(parse("tls://192.0.2.53#r.example", ", resolver_ca: /abs/ca.pem"))
  eq(cfg.perspectives[1].resolver_ca, "/abs/ca.pem")
end)
