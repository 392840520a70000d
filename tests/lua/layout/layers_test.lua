-- The layout of lua/mpic/ keeps its layers one-way: the domain (the library
-- files directly under lua/mpic/, challenge/ and models/) never requires a
-- command module (mpic.cmd.*) or a service module (mpic.service.*), and the
-- service never requires a command module. A require is found in any of its
-- forms (require "x", require("x"), require 'x', require [[x]], with or
-- without spaces), wherever it sits, lazy requires inside functions too, and
-- so is a module name handed over as a string ("mpic.cmd.x"), e.g. to
-- package.loaded or a helper that requires it later.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local case, eq, ok = T.case, T.eq, T.ok

local ROOT = require("mpic.paths").root .. "/lua/mpic"

-- The Lua files of a folder, sorted.
local function lua_files(dir)
  local names = assert(util.listdir(dir))
  local out = {}
  for _, n in ipairs(names) do
    if n:match("%.lua$") and util.filetype(dir .. "/" .. n) == "file" then out[#out + 1] = dir .. "/" .. n end
  end
  table.sort(out)
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Every reference of `text` to a module under one of `layers` ("cmd",
-- "service"): a list of {line, module}, the line where the name stands. A reference is a require in any
-- form, or the module's name as a quoted string.
local OPENERS = { '"', "'", "%[=*%[" }
local function references(text, layers)
  local found, seen = {}, {}
  local function add(pos, name)
    local line = 1
    for _ in text:sub(1, pos):gmatch("\n") do
      line = line + 1
    end
    local key = line .. " " .. name
    if not seen[key] then
      seen[key] = true
      found[#found + 1] = { line = line, module = name }
    end
  end
  for _, layer in ipairs(layers) do
    local name_pat = "(mpic%." .. layer .. "[%w_%.]*)"
    for _, open in ipairs(OPENERS) do
      -- require "x" / require("x") / require ( [[x]] ), across line breaks
      for pos, name in text:gmatch("require%s*%(?%s*" .. open .. "%s*()" .. name_pat) do
        add(pos, name)
      end
    end
    -- the name as a string literal (handed to require elsewhere)
    for pos, name in text:gmatch("[\"']()" .. name_pat) do
      add(pos, name)
    end
  end
  table.sort(found, function(a, b) return a.line < b.line end)
  return found
end

local function violations(files, layers)
  local out = {}
  for _, path in ipairs(files) do
    for _, r in ipairs(references(read(path), layers)) do
      out[#out + 1] = string.format("%s:%d requires %s", path:sub(#ROOT - 7), r.line, r.module)
    end
  end
  return out
end

local function domain_files()
  local files = lua_files(ROOT)
  for _, sub in ipairs({ "challenge", "models" }) do
    for _, f in ipairs(lua_files(ROOT .. "/" .. sub)) do
      files[#files + 1] = f
    end
  end
  return files
end

case("layers_scanner_finds_every_form_of_require", function()
  local text = table.concat({
    'local a = require "mpic.cmd.cli"',
    "local b = require('mpic.service.serve')",
    "local function lazy()",
    '  return require ( "mpic.service.health" ).round()',
    "end",
    "local c = require [[mpic.cmd.report]]",
    "local d = require[==[mpic.service.metrics]==]",
    'local e = require(\n  "mpic.cmd.explain"\n)',
    'local delegate = "mpic.cmd.validate"',
    "local f = package.loaded['mpic.service.workers']",
  }, "\n")
  local got = {}
  for _, r in ipairs(references(text, { "cmd", "service" })) do
    got[#got + 1] = r.line .. " " .. r.module
  end
  eq(got, {
    "1 mpic.cmd.cli",
    "2 mpic.service.serve",
    "4 mpic.service.health",
    "6 mpic.cmd.report",
    "7 mpic.service.metrics",
    "9 mpic.cmd.explain",
    "11 mpic.cmd.validate",
    "12 mpic.service.workers",
  })
end)

case("layers_scanner_ignores_other_modules_and_bare_mentions", function()
  local text = table.concat({
    'local x = require "mpic.orchestrator"',
    'local y = require "mpic.commands"',
    "-- the probing loop lives in mpic.service.health (a comment, no quotes)",
    'local z = require "mpic.core.server"',
  }, "\n")
  eq(#references(text, { "cmd", "service" }), 0)
end)

case("layers_the_folders_exist_and_hold_the_moved_modules", function()
  for _, f in ipairs({ "cmd/cli.lua", "cmd/repl.lua", "cmd/validate.lua", "service/serve.lua", "service/agent.lua" }) do
    eq(util.filetype(ROOT .. "/" .. f), "file", f)
  end
  for _, old in ipairs({ "cli.lua", "serve.lua", "agent_client.lua", "health.lua", "metrics.lua", "validate_cmd.lua" }) do
    eq(util.filetype(ROOT .. "/" .. old), nil, "lua/mpic/" .. old .. " should have moved")
  end
end)

case("layers_the_domain_never_requires_cmd_or_service", function()
  local files = domain_files()
  ok(#files > 30, "the domain files were found")
  local bad = violations(files, { "cmd", "service" })
  eq(#bad, 0, "upward edges:\n  " .. table.concat(bad, "\n  "))
end)

case("layers_the_service_never_requires_cmd", function()
  local files = lua_files(ROOT .. "/service")
  ok(#files >= 5, "the service files were found")
  local bad = violations(files, { "cmd" })
  eq(#bad, 0, "service -> cmd edges:\n  " .. table.concat(bad, "\n  "))
end)
