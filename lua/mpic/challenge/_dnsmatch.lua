-- mpic.challenge._dnsmatch: the shared TXT comparison of acme-dns-01 and
-- dns-account-01 (every TXT RR in the answer is a candidate; no trimming;
-- byte-exact, case-sensitive).
local C = require "mpic.challenge._common"
local M = {}
local ipairs = ipairs

function M.exact_txt(method, probe, name, want)
  local r, done = C.dns_lookup(method, probe, name, "TXT")
  if not r then return done end
  local d = C.dns_details(method, name, r)
  for _, v in ipairs(d.records_seen) do
    if v == want then return C.result(true, true, nil, d) end
  end
  d.reason = C.incorrect_text("TXT", d.records_seen, name)
  return C.result(false, true, nil, d)
end

return M
