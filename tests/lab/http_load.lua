-- http_load.lua TOTAL CONCURRENCY: TOTAL GETs of the lab's token file
-- through mpic.core.http, CONCURRENCY at a time; prints the request rate.
-- Run by `tests/lab/test_http.sh MPIC --load TOTAL CONCURRENCY` (nginx up).
local mpic = require "mpic"
-- the lab is on loopback: each request lifts the reserved-address guard, as labs do
local http = setmetatable({}, { __index = require "mpic.core.http" })
function http.request(url, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.http").request(url, opts)
end
http.get = http.request

local total = tonumber(arg[1]) or 10000
local conc = tonumber(arg[2]) or 100
local url = "http://"
  .. assert(os.getenv("MPIC_LAB_HTTP"))
  .. "/.well-known/acme-challenge/"
  .. assert(os.getenv("MPIC_LAB_TOKEN"))

local ok, failed, kinds = 0, 0, {}
local t0 = mpic.now()
local done = 0
while done < total do
  local n = math.min(conc, total - done)
  local tasks = {}
  for i = 1, n do
    tasks[i] = mpic.spawn(function() return http.get(url) end)
  end
  mpic.wait_all(tasks)
  for i = 1, n do
    local r, kind = tasks[i]:result()
    if r and r.status == 200 then
      ok = ok + 1
    else
      failed = failed + 1
      kinds[tostring(kind)] = (kinds[tostring(kind)] or 0) + 1
    end
  end
  done = done + n
end
local ms = math.max(1, mpic.now() - t0)
print(
  string.format(
    "%d requests, concurrency %d: %d ok, %d failed in %d ms = %.0f req/s; in flight after: %d",
    total,
    conc,
    ok,
    failed,
    ms,
    total * 1000 / ms,
    http.active()
  )
)
for k, v in pairs(kinds) do
  print("  " .. k .. ": " .. v)
end
if failed > 0 or http.active() ~= 0 then return 1 end
return 0
