-- Run `mpic audit SUB args...` in this process (the tests of this folder):
-- returns its exit status and everything it wrote.
local audit_cmd = require "mpic.cmd.audit"

return function(...)
  local out = {}
  local saved = audit_cmd.write
  audit_cmd.write = function(...)
    for _, s in ipairs({ ... }) do
      out[#out + 1] = s
    end
  end
  local okc, status = pcall(audit_cmd.main, { "audit", ... })
  audit_cmd.write = saved
  if not okc then error(status, 0) end
  return status, table.concat(out)
end
