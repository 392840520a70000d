-- Shared helpers for the TLS lab tests: where the servers of
-- tests/lab/test_tls.sh listen. Loaded with require "tls_lab" (the runner puts this folder on package.path).
local os_getenv, error, tonumber = os.getenv, error, tonumber

local M = {}

function M.addr()
  local a = os_getenv("MPIC_LAB_TLS_ADDR")
  if not a then error("MPIC_LAB_TLS_ADDR is not set: run this suite through tests/lab/test_tls.sh", 2) end
  return a
end

function M.port(name)
  local p = tonumber(os_getenv("MPIC_LAB_TLS_PORT_" .. name:upper()))
  if not p then error("MPIC_LAB_TLS_PORT_" .. name:upper() .. " is not set: run tests/lab/test_tls.sh", 2) end
  return p
end

function M.key_authorization() return os_getenv("MPIC_LAB_TLS_KEY_AUTH") or error("MPIC_LAB_TLS_KEY_AUTH is not set", 2) end

M.DNS_ID = "alpn.mpic.example"

return M
