-- tls.reverse_name and tls.parse_cert on bad input (no servers needed).
local T = require "mpic.testing"
local tls = require "mpic.core.tls"
local case, eq, raises = T.case, T.eq, T.raises

case("reverse_name_ipv4", function()
  eq(tls.reverse_name("127.0.0.1"), "1.0.0.127.in-addr.arpa")
  eq(tls.reverse_name("192.0.2.10"), "10.2.0.192.in-addr.arpa")
end)

case("reverse_name_ipv6_nibbles", function()
  eq(tls.reverse_name("2001:db8::567:89ab"), "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
  eq(tls.reverse_name("::1"), ("0."):rep(31):gsub("^", "1.") .. "ip6.arpa")
end)

case("reverse_name_rejects_non_ip", function()
  raises(function() tls.reverse_name("example.com") end, "not an IP address")
  raises(function() tls.reverse_name("1.2.3") end, "not an IP address")
  raises(function() tls.reverse_name("1.2.3.4.") end, "not an IP address")
end)

case("parse_cert_rejects_garbage", function()
  for _, s in ipairs({ "", "\48", "\48\130\255\255", ("A"):rep(1000), "\48\3\2\1\0" }) do
    local r, kind, detail = tls.parse_cert(s)
    eq(r, nil)
    eq(kind, "protocol")
    eq(detail, "not a DER X.509 certificate")
  end
end)
