-- DNSSEC at the primary (SC-085, BR 4.2.2.2; SC-100 evidence) against the
-- NSEC3 lab (tests/lab/test_dnssec.sh): the shipped perspectives.yaml, with
-- its resolvers pointed at the lab's validating unbound, passes check-config
-- and starts serve; a production configuration (primary, no lab switch)
-- without primary_dnssec is refused by serve, validate and check-config with
-- how to configure it; a lab states its switch; serve repeats the proof,
-- writes every outcome to the audit log, and a failing proof (the resolver
-- swapped for one that does not validate) makes validations 503 until a
-- proof passes again.
local T = require "mpic.testing"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function env(n) return (assert(os.getenv(n), n .. " unset: run through tests/lab/test_dnssec.sh")) end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- CMD bounded by timeout(1): output (stdout and stderr), exit code
local function sh(cmd)
  local out, _, code = T.shell(cmd, { merge = true, timeout_s = 30 })
  return out, code
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local write = T.write_file

-- perspectives.yaml with its resolvers at the lab and its audit log in the work dir
local function example(name, edit)
  local text = read("perspectives.yaml")
  ok(text:find("primary_dnssec: {signed_name: dnssec-ok.ca.example", 1, true), "the example configures the proof")
  local n
  text, n = text:gsub("127%.0%.0%.1:53", env("MPIC_LAB_DNS_N3"))
  ok(n >= 7, "resolvers replaced")
  text = text:gsub(
    "audit: {path: audit.jsonl}",
    "audit: {path: " .. env("MPIC_LAB_WORK") .. "/" .. name .. ".jsonl, fsync: false}"
  )
  if edit then text = edit(text) end
  return write(env("MPIC_LAB_WORK") .. "/" .. name .. ".yaml", text)
end

local function audit_lines(name)
  local out = {}
  for line in read(env("MPIC_LAB_WORK") .. "/" .. name .. ".jsonl"):gmatch("[^\n]+") do
    local doc = mpic.json.decode(line)
    if doc and doc.event == "primary_dnssec_proof" then out[#out + 1] = doc end
  end
  return out
end

local function without_proof(text) return (text:gsub("\nprimary_dnssec: [^\n]*", "")) end

case("dnssec_example_configuration_passes_check_config_through_a_validating_resolver", function()
  local out, code = sh(q(env("MPIC_LAB_MPIC")) .. " check-config --config " .. q(example("example")))
  eq(code, 0, out)
  contains(
    out,
    "the primary's resolver validates DNSSEC: dnssec-ok.ca.example A authenticated, "
      .. "dnssec-bogus.ca.example A refused"
  )
  eq(#audit_lines("example"), 0) -- check-config is a dry run: no audit lines
end)

case("dnssec_production_without_primary_dnssec_is_refused_with_how_to_configure_it", function()
  local path = example("noproof", without_proof)
  local bin = q(env("MPIC_LAB_MPIC"))
  for _, cmd in ipairs({
    " check-config --config " .. q(path),
    " serve --listen 127.0.47.3:0 --config " .. q(path),
    " validate --check caa --target example.com --config " .. q(path),
  }) do
    local out, code = sh(bin .. cmd)
    eq(code, 2, cmd .. ": " .. out)
    contains(out, "DNSSEC validation at the primary perspective is mandatory")
    contains(out, "add primary_dnssec: {signed_name: NAME, bogus_name: NAME")
    contains(out, "network.allow_reserved_ips: true")
  end
  eq(#audit_lines("noproof"), 0)
end)

case("dnssec_lab_switch_is_stated_and_validate_audits_its_proof", function()
  -- the lab switch: no proof required, and check-config says why
  local lab = example(
    "lab",
    function(t) return without_proof(t):gsub("allow_reserved_ips: false", "allow_reserved_ips: true") end
  )
  local out, code = sh(q(env("MPIC_LAB_MPIC")) .. " check-config --config " .. q(lab))
  eq(code, 0, out)
  contains(out, "warning: lab switch network.allow_reserved_ips is on: DNSSEC proof at the primary not required")
  -- validate with the proof: it runs at start and its outcome is in the audit log
  local path = example("validate")
  out = sh(q(env("MPIC_LAB_MPIC")) .. " validate --json --check caa --target example.com --config " .. q(path))
  local lines = audit_lines("validate")
  eq(#lines, 1, out)
  eq(lines[1].phase, "start")
  eq(lines[1].passed, true)
  eq(lines[1].primary, "primary")
  eq(lines[1].signed_name, "dnssec-ok.ca.example")
  eq(lines[1].resolvers, { env("MPIC_LAB_DNS_N3") })
  contains(lines[1].reason, "validates DNSSEC")
end)

-- A background `mpic serve`: pid, log path.
local function serve(path, port, name)
  local log = env("MPIC_LAB_WORK") .. "/" .. name .. ".log"
  local p = assert(
    io.popen(
      string.format(
        "%s serve --config %s --listen 127.0.47.3:%d --health-interval 1 " .. "</dev/null >%s 2>&1 & echo $!",
        q(env("MPIC_LAB_MPIC")),
        q(path),
        port,
        q(log)
      )
    )
  )
  local pid = tonumber(p:read("l"))
  p:close()
  return assert(pid), log
end

local function stop(pid)
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  for _ = 1, 50 do
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then return end
    mpic.sleep(100)
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

local function curl(port, path, body)
  local cmd = string.format(
    "curl -s -m 5 -o - -w '\\n%%{http_code}' %s http://127.0.47.3:%d%s",
    body and ("-H 'Content-Type: application/json' --data " .. q(body)) or "",
    port,
    path
  )
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local text, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), text or out
end

-- Poll until fn() is true (at most ms): true or false.
local function within(ms, fn)
  local deadline = mpic.now() + ms
  while mpic.now() < deadline do
    if fn() then return true end
    mpic.sleep(200)
  end
  return fn() and true or false
end

local function swap(kind)
  local _, code = sh("bash " .. q(env("MPIC_LAB_SWAP")) .. " resolver " .. q(env("MPIC_LAB_DIR")) .. " " .. kind)
  eq(code, 0, "resolver swap to " .. kind)
end

case("dnssec_serve_repeats_the_proof_audits_it_and_answers_503_while_it_fails", function()
  local path = example("serve")
  local port = 16310
  local pid, log = serve(path, port, "serve")
  local okrun, err = pcall(function()
    ok(within(10000, function() return curl(port, "/healthz") == 200 end), "healthy: " .. read(log))
    contains(read(log), "the primary's resolver validates DNSSEC")
    -- the start proof, then periodic ones, each an audit line
    ok(
      within(6000, function()
        local l = audit_lines("serve")
        return #l >= 3 and l[#l].phase == "periodic"
      end),
      "periodic proofs in the audit log"
    )
    local lines = audit_lines("serve")
    eq(lines[1].phase, "start")
    eq(lines[1].passed, true)
    for _, l in ipairs(lines) do
      eq(l.passed, true)
    end
    -- the resolver stops validating: the next proof fails, the primary is out, 503
    swap("plain")
    -- (while the resolver restarts, every canary fails for a moment: wait for the proof's reason)
    local code, body
    ok(
      within(10000, function()
        code, body = curl(port, "/healthz")
        return code == 503 and body:find('"reason":"primary: DNSSEC proof failed', 1, true) ~= nil
      end),
      "unavailable: " .. tostring(body) .. read(log)
    )
    local req = mpic.json.encode({ check_type = "caa", domain_or_ip_target = "example.com" })
    code, body = curl(port, "/mpic", req)
    eq(code, 503, body)
    contains(body, "primary")
    contains(
      read(log),
      "primary primary: DNSSEC proof failed, new validations get 503 until one passes: "
        .. "the primary's resolver answered the signed name dnssec-ok.ca.example A without AD=1"
    )
    local failed = nil
    for _, l in ipairs(audit_lines("serve")) do
      if not l.passed then failed = l end
    end
    ok(failed, "a failed proof in the audit log")
    eq(failed.phase, "periodic")
    contains(failed.reason, "without AD=1")
    -- validating again: the next proof passes and validations are served
    swap("validating")
    ok(within(10000, function() return curl(port, "/healthz") == 200 end), "healthy again: " .. read(log))
    local l = audit_lines("serve")
    eq(l[#l].passed, true)
    contains(read(log), "primary primary: DNSSEC proof passes again")
    contains(read(log), "perspective primary is healthy")
  end)
  stop(pid)
  swap("validating")
  ok(okrun, tostring(err))
end)
