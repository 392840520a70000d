-- The domain reaches agents through the transport that the process installs
-- (mpic.remote): the command layer installs the service's agent client for
-- every command, a check without a transport fails closed, and the
-- orchestrator uses whatever is installed.
local T = require "mpic.testing"
local remote = require "mpic.remote"
local perspectives = require "mpic.perspectives"
local orchestrator = require "mpic.orchestrator"
local case, eq, ok, contains, raises = T.case, T.eq, T.ok, T.contains, T.raises

local AGENT = { id = "fra", rir = "RIPE", agent = { url = "https://fra.example:8443" } }
local ST = { by_id = { fra = AGENT }, list = { AGENT }, health = {} }
local REQ = { check_type = "dcv", target_text = "example.com", echo_params = { validation_method = "acme-dns-01" } }

-- run fn with transport t installed, the previous one restored afterwards
local function with_transport(t, fn)
  local old = remote.install(t)
  local okr, err = pcall(fn)
  remote.install(old)
  if not okr then error(err, 0) end
end

case("remote_the_command_layer_installs_the_agent_client", function()
  -- `mpic test` runs through mpic.cmd.cli like every command
  eq(remote.installed(), require "mpic.service.agent_client")
end)

case("remote_without_a_transport_a_remote_check_fails_not_completed", function()
  with_transport(nil, function()
    local r = orchestrator.check_from({ persp = ST }, REQ, "fra", 1000)
    eq(r.passed, false)
    eq(r.completed, false)
    eq(r.errors[1].error_type, "mpic_error:coordinator:remote_check")
    contains(r.errors[1].error_message, "no transport to agents")
  end)
end)

case("remote_the_orchestrator_checks_agents_through_the_installed_transport", function()
  local seen
  local fake = {
    check = function(p, req, deadline_ms)
      seen = { id = p.id, check_type = req.check_type, deadline_ms = deadline_ms }
      return { passed = true, completed = true, errors = {}, details = { via = "fake" }, check_type = "dcv" }
    end,
  }
  with_transport(fake, function()
    local r = orchestrator.check_from({ persp = ST }, REQ, "fra", 1234)
    eq(seen, { id = "fra", check_type = "dcv", deadline_ms = 1234 })
    eq(r.passed, true)
    eq(r.details.via, "fake")
    ok(r.elapsed_ms, "timed")
  end)
end)

case("remote_an_unreachable_agent_asks_the_probing_loop_for_an_early_probe", function()
  perspectives.take_suspects()
  local fake = {
    check = function()
      return { passed = false, completed = false, errors = {}, details = {}, agent_unreachable = true }
    end,
  }
  with_transport(fake, function()
    orchestrator.check_from({ persp = ST }, REQ, "fra", 100)
    eq(perspectives.take_suspects(), { fra = true })
    eq(perspectives.take_suspects(), nil, "taken once")
  end)
end)

case("remote_install_refuses_what_is_not_a_transport", function()
  raises(function() remote.install({}) end, "expected a table with check")
  raises(function() remote.install("agent") end, "expected a table with check")
end)

case("remote_body_is_the_checker_body_agents_receive", function()
  local util = require "mpic.core.util"
  eq(require("mpic.service.agent_client").body, remote.body)
  local doc = util.json_decode(remote.body(REQ))
  eq(doc.domain_or_ip_target, "example.com")
  eq(doc.dcv_check_parameters.validation_method, "acme-dns-01")
  eq(doc.trace_identifier, util.null)
end)
