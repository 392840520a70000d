-- The command line and the REPL as an author meets them: every subcommand
-- answers --help (usage, exit 0), `mpic help [CMD]`, --config for run and
-- test, messages that list the choices, trace identifiers for validations
-- started here, and help(fn) in the REPL.
local T = require "mpic.testing"
local mpic = require "mpic"
local perspectives = require "mpic.perspectives"
local orchestrator = require "mpic.orchestrator"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local self_exe = T.self_exe

local EXE = self_exe()

-- stdout, stderr and the exit status of a command (bounded by timeout)
local function run(cmd) return T.shell(cmd) end

local write = T.write_file

local tmpdir = T.tmpdir

-- a configuration file whose resolvers are a closed loopback port
local function config_file(dir, extra)
  return write(dir .. "/perspectives.yaml", [[
issuer: {caa_domains: [ca.example]}
defaults: {perspective_count: 4, max_attempts: 1, timeout_ms: 1000}
network: {allow_reserved_ips: true}
audit: {path: audit.jsonl, fsync: false}
primary: primary
perspectives:
  - {id: primary, rir: ARIN,   location: {lat: 39.04, lon: -77.49},  resolvers: ["127.0.0.1:9"]}
  - {id: pdx,     rir: ARIN,   location: {lat: 45.52, lon: -122.68}, resolvers: ["127.0.0.1:9"]}
  - {id: fra,     rir: RIPE,   location: {lat: 50.11, lon: 8.68},    resolvers: ["127.0.0.1:9"]}
  - {id: sgp,     rir: APNIC,  location: {lat: 1.35,  lon: 103.82},  resolvers: ["127.0.0.1:9"]}
  - {id: gru,     rir: LACNIC, location: {lat: -23.55, lon: -46.63}, resolvers: ["127.0.0.1:9"]}
]] .. (extra or ""))
end

local COMMANDS = {
  "validate",
  "serve",
  "agent",
  "run",
  "check-config",
  "test",
  "repl",
  "explain",
  "simulate",
  "demo",
  "audit",
  "help",
}

case("every_subcommand_answers_help_with_its_usage", function()
  for _, c in ipairs(COMMANDS) do
    for _, flag in ipairs({ "--help", "-h" }) do
      local out, err, code = run(EXE .. " " .. c .. " " .. flag)
      eq(code, 0, c .. " " .. flag .. ": " .. err)
      contains(out, "usage: mpic " .. c, c .. " " .. flag)
    end
  end
  -- --help after other options, too; demo does not start its lab
  local out, _, code = run(EXE .. " check-config --config /nonexistent --help")
  eq(code, 0)
  contains(out, "usage: mpic check-config")
  out = run(EXE .. " demo --help")
  ok(not out:find("Starting the demo lab", 1, true), "demo --help runs nothing")
end)

case("mpic_help_lists_commands_and_one_usage", function()
  local out, _, code = run(EXE .. " help")
  eq(code, 0)
  contains(out, "commands:")
  contains(out, "Every command takes --help")
  out, _, code = run(EXE .. " help simulate")
  eq(code, 0)
  contains(out, "usage: mpic simulate")
  local _, err
  _, err, code = run(EXE .. " help nosuch")
  eq(code, 2)
  contains(err, 'unknown command "nosuch"')
  contains(err, "check-config")
  _, err, code = run(EXE .. " nosuch")
  eq(code, 2)
  contains(err, "commands: agent, ")
  contains(err, "check-config, demo, explain, help")
end)

case("run_takes_config_and_leaves_later_options_to_the_script", function()
  local dir = tmpdir()
  local cfg = config_file(dir)
  local script = write(
    dir .. "/s.lua",
    [[
local mpic = require "mpic"
print("config", mpic.config and mpic.config.file or "none", "args", table.concat({ ... }, " "))
return 0
]]
  )
  local out, err, code = run(EXE .. " run --config " .. cfg .. " " .. script .. " --help x")
  eq(code, 0, err)
  contains(out, "config\t" .. cfg .. "\targs\t--help x")
  out, err, code = run(EXE .. " run " .. script)
  eq(code, 0, err)
  contains(out, "config\tnone")
  local _, merr, mcode = run(EXE .. " run --config " .. dir .. "/missing.yaml " .. script)
  eq(mcode, 2)
  contains(merr, "missing.yaml: cannot read")
  os.execute("rm -rf " .. dir)
end)

case("test_takes_config", function()
  local dir = tmpdir()
  local cfg = config_file(dir)
  write(
    dir .. "/cfg_test.lua",
    [[
local T = require "mpic.testing"
T.case("config_is_loaded", function() T.eq(#require("mpic").perspectives(), 5) end)
]]
  )
  local out, err, code = run(EXE .. " test --config " .. cfg .. " " .. dir)
  eq(code, 0, out .. err)
  contains(out, "1 passed, 0 failed")
  os.execute("rm -rf " .. dir)
end)

case("check_config_refuses_resolvers_that_are_not_addresses", function()
  local config = require "mpic.config"
  local function refused(r)
    local base = "issuer: {caa_domains: [ca.example]}\nperspectives:\n"
      .. '  - {id: a, rir: ARIN, location: {lat: 1, lon: 1}, resolvers: ["'
      .. r
      .. '"]}\n'
    local cfg, err = config.parse(base, "t.yaml")
    return cfg == nil and err or nil
  end
  contains(refused("not-an-ip"), 't.yaml: perspectives[0].resolvers[0]: "not-an-ip" is not an IP address')
  contains(refused("127.0.0.1:99999"), 'port "99999" is not a port number (1-65535)')
  contains(refused("127.0.0.1:0"), 'port "0"')
  contains(refused("dns.example:53"), "not an IP address")
  contains(refused("[192.0.2.1]:53"), "brackets are for IPv6")
  for _, good in ipairs({ "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:53" }) do
    eq(refused(good), nil, good)
  end
  local dir = tmpdir()
  local cfg = write(
    dir .. "/bad.yaml",
    "issuer: {caa_domains: [ca.example]}\nperspectives:\n"
      .. '  - {id: a, rir: ARIN, location: {lat: 1, lon: 1}, resolvers: ["127.0.0.1:99999"]}\n'
  )
  local _, err, code = run(EXE .. " check-config --config " .. cfg)
  eq(code, 2)
  contains(err, 'port "99999"')
  os.execute("rm -rf " .. dir)
end)

case("a_missing_or_unknown_method_lists_the_methods", function()
  local dir = tmpdir()
  local cfg = config_file(dir)
  local _, err, code = run(EXE .. " validate --config " .. cfg .. " --check dcv --target example.com")
  eq(code, 2)
  contains(err, "--check dcv needs --method M (one of: acme-dns-01, acme-http-01")
  os.execute("rm -rf " .. dir)
  local r = T.scenario {
    config = T.config {},
    outcomes = { ["*"] = "pass" },
    request = T.request { dcv_check_parameters = { key_authorization_hash = ("A"):rep(43) } },
  }
  eq(r.status, 400)
  contains(r.issues[1].message, "validation_method is missing (one of: acme-dns-01")
  r = T.scenario {
    config = T.config {},
    outcomes = { ["*"] = "pass" },
    request = T.request { dcv_check_parameters = { validation_method = "dns-1" } },
  }
  contains(r.issues[1].message, "unknown validation_method dns-1 (one of: acme-dns-01")
end)

-- A misspelt option of a probe function is an error before any probe, not
-- a default silently kept (no traffic: the refusal comes first).
case("probe_functions_refuse_unknown_options", function()
  local prev = perspectives.config()
  perspectives.configure(T.config {})
  local function refused(fn, ...)
    local okc, err = pcall(fn, ...)
    eq(okc, false)
    return tostring(err)
  end
  contains(refused(mpic.dns.query, "example.com", "TXT", { timeout_ms = 5 }), "dns.query: unknown option timeout_ms")
  contains(refused(mpic.http.get, "http://example.com/", { timeout_m = 5 }), "http.get: unknown option timeout_m")
  contains(
    refused(mpic.http.fetch, "http://example.com/", { max_redirect = 1 }),
    "http.fetch: unknown option max_redirect (options: connect_timeout_ms, headers, max_bytes, max_redirects"
  )
  contains(refused(mpic.tls.alpn, "example.com", { snl = "x" }), "tls.alpn: unknown option snl")
  contains(refused(mpic.tls.alpn, "example.com", { [1] = "x" }), "tls.alpn: unknown option 1")
  if prev then perspectives.configure(prev) end
end)

case("unknown_perspective_and_bad_rtype_are_plain_messages", function()
  local prev = perspectives.config()
  perspectives.configure(T.config {})
  local okq, err = pcall(mpic.dns.query, "example.com", "TXT", { perspective = "nope" })
  local okt, terr = pcall(mpic.dns.query, "example.com", "BOGUS")
  if prev then perspectives.configure(prev) end
  eq(okq, false)
  contains(err, 'unknown perspective "nope" (perspectives: primary, pdx, fra')
  eq(okt, false)
  contains(terr, 'unsupported rtype "BOGUS" (one of: A, AAAA')
  -- in the REPL: the message, no traceback into mpic's files
  local dir = tmpdir()
  local cfg = config_file(dir)
  local out, rerr = run(
    "printf '%s\\n' 'mpic.dns.query(\"example.com\", \"BOGUS\")' "
      .. '\'mpic.dns.query("example.com", "TXT", {perspective = "nope"})\' | '
      .. EXE
      .. " repl --config "
      .. cfg
  )
  local all = out .. rerr
  contains(all, 'unsupported rtype "BOGUS"')
  contains(all, "(perspectives: primary, pdx, fra, sgp, gru)")
  ok(not all:find("stack traceback", 1, true), "no traceback: " .. all)
  os.execute("rm -rf " .. dir)
end)

case("verdict_line_names_the_check_once", function()
  local report = require "mpic.cmd.report"
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
    request = { check_type = "caa", domain_or_ip_target = "example.com" },
  }
  local text = report.table(r.response, {})
  contains(text, "VALID: caa for example.com --")
  r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
  }
  contains(report.table(r.response, {}), "VALID: dcv acme-dns-01 for example.com --")
end)

case("validations_started_here_get_a_trace_identifier", function()
  local req = { check_type = "caa", domain_or_ip_target = "example.com" }
  local with = orchestrator.with_trace(req)
  eq(req.trace_identifier, nil)
  ok(
    with.trace_identifier:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"),
    "a version 4 UUID: " .. with.trace_identifier
  )
  ok(orchestrator.with_trace(req).trace_identifier ~= with.trace_identifier, "fresh each time")
  eq(orchestrator.with_trace({ trace_identifier = "mine" }).trace_identifier, "mine")
  eq(orchestrator.with_trace({ trace_identifier = mpic.json.null }).trace_identifier, mpic.json.null)
  -- mpic.validate (the REPL's and scripts' entry): the audit line carries
  -- it and `mpic explain --trace` finds it
  local dir = tmpdir()
  local cfgpath = config_file(dir)
  local prev, prevg = perspectives.config(), mpic.config
  assert(mpic.load_config(cfgpath))
  orchestrator.reset()
  local resp, status = mpic.validate { check_type = "caa", domain_or_ip_target = "example.com" }
  if prev then perspectives.configure(prev) end
  mpic.config = prevg
  orchestrator.reset()
  eq(status, 200, resp.error)
  ok(
    type(resp.trace_identifier) == "string" and #resp.trace_identifier == 36,
    "trace: " .. tostring(resp.trace_identifier)
  )
  local out, err, code = run(EXE .. " explain " .. dir .. "/audit.jsonl --trace " .. resp.trace_identifier)
  eq(code, 0, err)
  contains(out, "(trace " .. resp.trace_identifier .. ")")
  os.execute("rm -rf " .. dir)
end)

case("explain_for_a_response_shows_the_shadow_verdicts", function()
  local report = require "mpic.cmd.report"
  local audit = os.tmpname()
  local cfg = T.config {
    defaults = { perspective_count = 5, max_attempts = 1 },
    audit = { path = audit, fsync = false },
    shadow_policies = { "policies/strict.lua" },
  }
  local r = T.scenario {
    config = cfg,
    date = "2026-12-16",
    outcomes = { ["*"] = "pass", sgp = "fail" },
    request = T.request { trace_identifier = "shadowed" },
  }
  local prev = perspectives.config()
  perspectives.configure(cfg)
  local text = report.explain(r.response)
  if prev then perspectives.configure(prev) end
  os.remove(audit)
  ok(not text:find("shadow policies: none", 1, true), text)
  contains(text, "shadow policies (judging")
  contains(text, "strict.lua")
end)

case("explain_without_input_does_not_wait_on_a_terminal", function()
  local p = io.popen("command -v script")
  local has = p and p:read("l")
  if p then p:close() end
  if not has then return end -- util-linux script gives the command a terminal
  local dir = tmpdir()
  local out = run("sh -c 'cd " .. dir .. ' && script -qec "' .. EXE .. " explain\" /dev/null' < /dev/null")
  contains(out, "standard input is a terminal")
  contains(out, "usage: mpic explain")
  os.execute("rm -rf " .. dir)
end)

case("repl_help_documents_every_public_function", function()
  local repl = require "mpic.cmd.repl"
  _G.mpic = mpic
  local text = repl.help_text(mpic.validate)
  contains(text, "mpic.validate(request) -> response, status")
  contains(text, "\n  One validation")
  contains(repl.help_text("mpic.dns.query"), "mpic.dns.query(name, rtype")
  contains(repl.help_text(print), "no help for function")
  -- every function reachable from `mpic` has its entry
  local documented = {}
  for _, d in ipairs(repl.DOCS) do
    documented[d[1]] = true
  end
  local function walk(t, prefix, depth)
    for k, v in pairs(t) do
      if type(v) == "function" then
        ok(documented[prefix .. k], "help documents " .. prefix .. k)
      elseif type(v) == "table" and depth < 2 and k ~= "config" then
        walk(v, prefix .. k .. ".", depth + 1)
      end
    end
  end
  walk(mpic, "mpic.", 0)
  -- in the REPL itself, with :help mentioning it
  local out = run("printf '%s\\n' 'help(mpic.validate)' ':help' | " .. EXE .. " repl")
  contains(out, "mpic.validate(request) -> response, status")
  contains(out, "help(mpic.validate)")
end)
