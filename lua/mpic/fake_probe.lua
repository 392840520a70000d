-- mpic.fake_probe (also T.fake_probe in mpic.testing): a fake perspective
-- probe for unit tests of challenge types, no network: a DNS zone table, HTTP routes
-- and TLS-ALPN answers held in plain Lua tables, plus builders for rdata and
-- for certificate tables shaped like mpic.core.tls results.
--
-- Use: local F = require("mpic.testing").fake_probe; local probe = F.probe{zone = ...}
-- and hand probe to T.run_challenge (or mpic.challenges.run).
--
-- zone[name] = {TXT = {rdata...}, CAA = {...}, A = {...}, cname = "target.",
--               fail = {"servfail", "detail"}, nxdomain = true,
--               server = "ip:port" (overrides spec.server), ad = bool (overrides spec.ad)}
-- spec.routes[url] = {status=, body=, headers=, fail = kind, detail=} answers fetch and http_get;
-- spec.tls[host] = a certificate answer (F.cert) or {fail = kind, detail=};
-- spec.insecure[name] = true: dnssec_insecure(name) proves it Insecure.
-- probe.log records every dns query ("name/TYPE"), fetch and tls call.
-- spec.server: the "ip:port" every answer reports as its server (default none);
-- a failure reports it only when it carries an answer (fail.rcode set).
-- A name missing from the zone answers NXDOMAIN (or NODATA with
-- spec.missing = "nodata"); a present name without the type answers NODATA.
-- CNAMEs are followed (as a resolver does) and listed in
-- cname_chain; a CNAME-type query returns the CNAME itself.
local F = {}

local function norm(n) return (tostring(n):lower():gsub("%.$", "")) end

function F.txt(...)
  local strings = { ... }
  return { strings = strings, value = table.concat(strings) }
end
function F.caa(flags, tag, value) return { flags = flags, critical = (flags & 128) ~= 0, tag = tag, value = value } end
function F.a(addr) return { address = addr } end
function F.name(target) return { target = target } end

function F.probe(spec)
  spec = spec or {}
  local zone, routes, tls = spec.zone or {}, spec.routes or {}, spec.tls or {}
  local log = { dns = {}, fetch = {}, tls = {} }
  local probe = { log = log, config = spec.config or { caa_domains = {}, account_uri_prefixes = {} } }

  function probe.dns(name, rtype)
    local qname = norm(name)
    log.dns[#log.dns + 1] = qname .. "/" .. rtype
    local chain = {}
    local cur = qname
    for _ = 1, 16 do
      local node = zone[cur]
      if node == nil and spec.missing == "nodata" then node = {} end
      if node == nil then
        return {
          name = qname .. ".",
          type = rtype,
          rcode = "NXDOMAIN",
          ad = spec.ad == true,
          records = {},
          cname_chain = chain,
          answers = {},
          server = spec.server,
        }
      end
      if node.fail then
        return nil,
          node.fail[1],
          node.fail[2] or node.fail[1],
          { rcode = node.fail.rcode, server = node.fail.rcode and (node.server or spec.server) or nil }
      end
      if node.cname and rtype ~= "CNAME" then
        chain[#chain + 1] = node.cname
        cur = norm(node.cname)
      else
        local records
        if rtype == "CNAME" and node.cname then
          records = { { target = node.cname } }
        else
          records = node[rtype] or {}
        end
        local ad = spec.ad == true
        if node.ad ~= nil then ad = node.ad end
        return {
          name = qname .. ".",
          type = rtype,
          rcode = node.nxdomain and "NXDOMAIN" or "NOERROR",
          ad = ad,
          records = records,
          cname_chain = chain,
          answers = records,
          server = node.server or spec.server,
        }
      end
    end
    return nil, "dns", "CNAME chain too long"
  end

  function probe.fetch(url, opts)
    log.fetch[#log.fetch + 1] = { url = url, opts = opts }
    local r = routes[url]
    if r == nil then return nil, "connect", "Connection refused" end
    if r.fail then return nil, r.fail, r.detail, r.history end
    local body = r.body or ""
    local max = opts and opts.max_bytes
    local exceeded = false
    if max and #body > max then
      body, exceeded = body:sub(1, max), true
    end
    return {
      status = r.status or 200,
      reason = r.reason,
      body = body,
      exceeded = exceeded,
      url = r.url or url,
      ip = r.ip or "192.0.2.1",
      history = r.history or {},
    }
  end

  -- resolve(host): the zone's AAAA then A addresses of host, as the real
  -- probe lists them; nil, "dns", detail when it has none.
  function probe.resolve(host)
    local node = zone[norm(host)]
    local out = {}
    for _, t in ipairs({ "AAAA", "A" }) do
      for _, rr in ipairs(node and node[t] or {}) do
        out[#out + 1] = rr.address
      end
    end
    if #out == 0 then return nil, "dns", "no valid A records found for " .. norm(host) end
    return out
  end

  -- http_get(url, opts): one hop, no redirects followed (routes as for fetch).
  function probe.http_get(url, opts)
    log.fetch[#log.fetch + 1] = { url = url, opts = opts, one_hop = true }
    local r = routes[url]
    if r == nil then return nil, "connect", "Connection refused" end
    if r.fail then return nil, r.fail, r.detail end
    return {
      status = r.status or 200,
      reason = r.reason,
      body = r.body or "",
      headers = r.headers or {},
      url = url,
      ip = r.ip or "192.0.2.1",
    }
  end

  -- dnssec_insecure(name): spec.insecure[name] = true proves name Insecure;
  -- anything else is "not proven".
  function probe.dnssec_insecure(name)
    if spec.insecure and spec.insecure[norm(name)] then return true, "proven insecure (fake probe)" end
    return false, "no proof of insecurity for " .. norm(name) .. " (fake probe)"
  end

  function probe.tls_alpn(host, sni)
    log.tls[#log.tls + 1] = { host = host, sni = sni }
    local r = tls[host]
    if r == nil then return nil, "connect", "192.0.2.1: Connection refused" end
    if r.fail then return nil, r.fail, r.detail end
    return r
  end

  return probe
end

---------------------------------------------------------------------------
-- DER and certificate builders (enough for the SAN and acmeIdentifier checks)

local function der_len(n)
  if n < 128 then return string.char(n) end
  if n < 256 then return "\129" .. string.char(n) end
  return "\130" .. string.pack(">I2", n)
end
function F.tlv(tag, content) return string.char(tag) .. der_len(#content) .. content end

-- san entries: {"dns", "name"} / {"ip", <raw bytes>} / {"email", "x@y"}
function F.san_der(entries)
  local parts = {}
  for _, e in ipairs(entries) do
    local tag = ({ dns = 0x82, ip = 0x87, email = 0x81, uri = 0x86 })[e[1]]
    parts[#parts + 1] = F.tlv(tag, e[2])
  end
  return F.tlv(0x30, table.concat(parts))
end

-- opts: san (entries), digest (32 raw bytes), acme_value (raw extnValue override),
-- acme_critical (default true), acme_oid, no_san, no_acme, self_signed (default true),
-- duplicates (list of OIDs), common_name
function F.cert(opts)
  local ext = {}
  if not opts.no_san then ext[#ext + 1] = { oid = "2.5.29.17", critical = false, value = F.san_der(opts.san or {}) } end
  if not opts.no_acme then
    ext[#ext + 1] = {
      oid = opts.acme_oid or "1.3.6.1.5.5.7.1.31",
      critical = opts.acme_critical ~= false,
      value = opts.acme_value or F.tlv(0x04, opts.digest or string.rep("\0", 32)),
    }
  end
  local san = {}
  for _, e in ipairs(opts.san or {}) do
    san[#san + 1] = { type = e[1], value = e[2] }
  end
  local subject = "\48\20subject-" .. (opts.common_name or "x")
  return {
    der = "\48\0",
    common_name = opts.common_name,
    self_signed = opts.self_signed ~= false,
    subject_der = subject,
    issuer_der = opts.issuer_der or subject,
    extensions = ext,
    duplicate_extensions = opts.duplicates or {},
    san = san,
  }
end

return F
