-- `mpic audit verify` over the audit files of `mpic serve --workers N`
-- (PATH, PATH.w1, ...): each file is its own writer's chain, and each chain
-- must end with a signed checkpoint (unless --open).
local T = require "mpic.testing"
local util = require "mpic.core.util"
local sign = require "mpic.core.sign"
local workers = require "mpic.service.workers"
local case, eq, contains = T.case, T.eq, T.contains

local tmpdir = T.tmpdir

local audit = require "audit_run"

-- Two writers' chains, as two workers write them; checkpoint_first: whether
-- worker 0's file ends with a checkpoint.
local function two_chains(checkpoint_first)
  local dir = tmpdir()
  local priv = sign.generate()
  local key = assert(sign.private(priv))
  local f = assert(io.open(dir .. "/coord.pub", "wb"))
  f:write(key:public():pem())
  f:close()
  local paths = workers.audit_paths(dir .. "/audit.jsonl", 2)
  for k, path in ipairs(paths) do
    local w = assert(util.audit.open(path, false))
    w:set_key(key)
    assert(w:append('{"worker":' .. (k - 1) .. ',"n":1}'))
    assert(w:append('{"worker":' .. (k - 1) .. ',"n":2}'))
    if k > 1 or checkpoint_first then assert(w:checkpoint()) end
  end
  return dir, paths
end

case("workers_audit_paths_are_named_per_worker", function()
  eq(workers.audit_paths("/x/a.jsonl", 3), { "/x/a.jsonl", "/x/a.jsonl.w1", "/x/a.jsonl.w2" })
  eq(workers.audit_suffix(0), nil)
  eq(workers.audit_suffix(2), ".w2")
end)

case("workers_audit_files_each_a_chain_verify_together", function()
  local dir, paths = two_chains(true)
  local status, out = audit("verify", paths[1], paths[2], "--key", dir .. "/coord.pub")
  eq(status, 0, out)
  contains(out, "ok: 6 lines, 2 checkpoints")
  contains(out, "audit.jsonl.w1:1 starts a new chain")
  os.execute("rm -rf '" .. dir .. "'")
end)

case("workers_audit_a_chain_cut_before_the_next_file_fails", function()
  local dir, paths = two_chains(false)
  local status, out = audit("verify", paths[1], paths[2], "--key", dir .. "/coord.pub")
  eq(status, 1, out)
  contains(out, "FAIL " .. paths[1] .. ":2: the log ends without a signed checkpoint before the next file's chain")
  -- logs still written: no end checkpoint is asked
  status, out = audit("verify", paths[1], paths[2], "--key", dir .. "/coord.pub", "--open")
  eq(status, 0, out)
  os.execute("rm -rf '" .. dir .. "'")
end)
