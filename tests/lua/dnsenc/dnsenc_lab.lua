-- The lab of tests/lab/test_dnsenc.sh as the tests of this folder see it.
local M = {}

--- The value of environment variable var, which the lab script sets.
function M.env(var)
  local v = os.getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dnsenc.sh MPIC_BINARY", 2) end
  return v
end

return M
