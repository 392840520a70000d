-- mpic.cmd.demo: `mpic demo`, a first look at what MPIC defends against.
-- Starts the minimal loopback lab (tests/lab/demo.sh: two Knot servers, the
-- owner's view of shop.test and an attacker's), then runs two real acme-dns-01
-- validations through the default policy (br.lua) with a primary and six
-- remote perspectives, prints both tables with a sentence each, and stops the
-- lab. No root needed.
local mpic = require "mpic"
local report = require "mpic.cmd.report"
local orchestrator = require "mpic.orchestrator"

local M = {}
local string_format = string.format

local OWNER_HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local ATTACKER_HASH = "uomAjM7apOVLySMSYPYgge1Rsk2kVk_menYFSpM-K6w"

-- The lab script, run without a shell (argv as given), at most 60 s.
local function lab_script(lab, verb, dir)
  local code = require("mpic.core.workers").run({ "bash", lab, verb, dir }, 60000)
  return code == 0
end

local function scenario(title, config, hash, explain)
  local cfg, err = mpic.load_config(config)
  if not cfg then return nil, err end
  orchestrator.reset()
  print(string_format("\n== %s ==", title))
  local resp, status = orchestrator.validate({
    check_type = "dcv",
    domain_or_ip_target = "shop.test",
    trace_identifier = "demo",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  })
  if status ~= 200 then return nil, report.problems(resp, status) end
  io.write(report.table(resp, { color = report.is_tty() }))
  print(explain(resp))
  return resp
end

function M.main()
  local root = package.loaded["mpic.paths"].root
  local lab = root .. "/tests/lab/demo.sh"
  local f = io.open(lab, "r")
  if not f then
    io.stderr:write("mpic demo: the lab scripts are missing (" .. lab .. ")\n")
    return 2
  end
  f:close()
  local dir = os.getenv("MPIC_DEMO_DIR") or os.tmpname()
  os.remove(dir)
  print("Starting the demo lab (two Knot DNS servers on 127.0.20.1 and 127.0.20.2) in " .. dir)
  if not lab_script(lab, "start", dir) then
    io.stderr:write("mpic demo: the lab did not start (is knot installed? see README)\n")
    lab_script(lab, "stop", dir)
    return 1
  end
  local ISSUED_OUTVOTED = "Issued: fra saw the attacker's record and disagreed, but the other remotes "
    .. "in 4 RIRs corroborated the primary; one hijacked perspective is outvoted."
  local ok, r1, r2, err = pcall(function()
    local a, e1 = scenario(
      "1. The owner validates shop.test; the route to one remote perspective (fra) is hijacked",
      dir .. "/perspectives-one-hijacked.yaml",
      OWNER_HASH,
      function(resp) return resp.is_valid and ISSUED_OUTVOTED or "Unexpected: the owner's validation failed." end
    )
    if not a then return nil, nil, e1 end
    local b, e2 = scenario(
      "2. An attacker asks for shop.test with its own key; it hijacked the primary and 3 of 6 remotes",
      dir .. "/perspectives-most-hijacked.yaml",
      ATTACKER_HASH,
      function(resp)
        return resp.is_valid and "Unexpected: the attacker's validation passed."
          or (
            "Refused: the primary was fooled, as a single-perspective CA would be, but only 3 of 6 "
            .. "remotes saw the attacker's record and the quorum needs 4."
          )
      end
    )
    return a, b, e2
  end)
  lab_script(lab, "stop", dir)
  if not ok then
    io.stderr:write("mpic demo: ", tostring(r1), "\n")
    return 1
  end
  if not r1 or not r2 then
    io.stderr:write("mpic demo: ", tostring(err), "\n")
    return 1
  end
  print(string_format("\nAudit log of both validations: %s/audit.jsonl", dir))
  -- the demo succeeds only when MPIC behaved as it must
  if r1.is_valid and not r2.is_valid then return 0 end
  return 1
end

return M
