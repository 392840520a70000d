-- silent.lua ADDR PORT [CERT KEY]: an HTTP(S) server that accepts requests
-- and never answers them (a hung agent, or a web server that stalls).
-- Run with `mpic run`; stop it by its PID.
local server = require "mpic.core.server"
local addr, port, cert, key = ...
local tls = cert and { cert = cert, key = key } or nil
local srv = assert(server.listen({ address = addr, port = tonumber(port), tls = tls, idle_timeout_s = 600 }))
local held = {}
while true do
  local req = srv:next()
  if not req then break end
  held[#held + 1] = req -- kept unanswered (and uncollected) forever
  if #held > 10000 then held = {} end
end
