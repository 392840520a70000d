-- mpic.remote: how a validation reaches a remote perspective's agent,
-- without the domain knowing the transport. The layer that starts the
-- process installs one (mpic.cmd.cli installs mpic.service.agent_client for
-- every command, so `serve`, `validate`, `run` and the REPL all reach
-- agents); a remote check made while none is installed fails, not
-- completed, with mpic_error:coordinator:remote_check.
--   install(t)                 t.check(p, req, deadline_ms) -> check result
--   check(p, req, deadline_ms) the installed transport's check, or that failure
--   body(req)                  the checker body an agent receives for req
local util = require "mpic.core.util"

local M = {}
local type, error = type, error

local transport = nil

--- Install the transport (a table with check(p, req, deadline_ms)); nil
--- removes it. Returns the one it replaced.
function M.install(t)
  if t ~= nil and (type(t) ~= "table" or type(t.check) ~= "function") then
    error("remote.install: expected a table with check(p, req, deadline_ms)", 2)
  end
  local old = transport
  transport = t
  return old
end

function M.installed() return transport end

--- check(p, req, deadline_ms) -> check result (never raises on a network outcome).
function M.check(p, req, deadline_ms)
  if transport then return transport.check(p, req, deadline_ms) end
  return require("mpic.error_types").failure(
    "mpic_error:coordinator:remote_check",
    "The remote check failed to complete: no transport to agents is installed in this process",
    req.check_type
  )
end

--- The checker body for one request (the orchestrator's normalised request).
function M.body(req)
  local b = { domain_or_ip_target = req.target_text, trace_identifier = req.trace_identifier or util.null }
  if req.check_type == "dcv" then
    b.dcv_check_parameters = req.echo_params
  else
    b.caa_check_parameters = req.echo_params or util.null
  end
  return util.json_encode(b)
end

return M
