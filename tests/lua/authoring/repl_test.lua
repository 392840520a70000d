-- The Lua side of the REPL: completion candidates, ':' commands and the
-- rendering of results (mpic.cmd.repl, mpic.cmd.pretty).
local T = require "mpic.testing"
local repl = require "mpic.cmd.repl"
local pretty = require "mpic.cmd.pretty"
local perspectives = require "mpic.perspectives"
local case, eq, contains = T.case, T.eq, T.contains

-- complete() the way libedit calls it: the text before the cursor and the
-- 1-based start of the word (after the last space, bracket, quote or =).
local function complete(line)
  local start = 1
  for i = #line, 1, -1 do
    if (" \t\n\"'`@$><=;|&{("):find(line:sub(i, i), 1, true) then
      start = i + 1
      break
    end
  end
  return repl.complete(line, start)
end

case("complete_walks_dotted_names", function()
  _G.mpic = require "mpic"
  eq(complete("mpic.dn"), { "mpic.dns." })
  eq(complete("mpic.dns.q"), { "mpic.dns.query(" })
  eq(complete("print(mpic.sl"), { "mpic.sleep(" })
  eq(complete("x = mpic.http.ge"), { "mpic.http.get(" })
  eq(complete("mpic.nosuch.x"), {})
  eq(complete("mpic.distance_km.x"), {})
end)

case("complete_lists_every_field_of_a_table", function()
  _G.mpic = require "mpic"
  local all = complete("mpic.tls.")
  eq(all, { "mpic.tls.alpn(" })
  local top = complete("mpic.")
  local found = {}
  for _, c in ipairs(top) do
    found[c] = true
  end
  eq(found["mpic.dns."], true)
  eq(found["mpic.validate("], true)
  eq(found["mpic.perspectives("], true)
end)

case("complete_perspective_ids_inside_strings", function()
  local prev = perspectives.config()
  perspectives.configure(T.config {})
  local got = complete('mpic.dns.query("x", "TXT", {perspective = "s')
  local any = complete("{perspective='")
  if prev then perspectives.configure(prev) end
  eq(got, { "sgp", "sto", "syd" })
  eq(#any, #T.PERSPECTIVES)
  -- other strings are left alone
  eq(complete('print("mpic.d'), {})
end)

case("complete_repl_commands", function()
  eq(complete(":he"), { ":help" })
  eq(complete(":"), repl.command_names())
  eq(complete(":zz"), {})
end)

case("render_shows_a_response_as_the_validate_table", function()
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
  }
  local prev = perspectives.config()
  perspectives.configure(T.config {})
  local text = pretty.render(r.response)
  if prev then perspectives.configure(prev) end
  contains(text, "perspective")
  contains(text, "primary (primary)")
  contains(text, "VALID")
  -- anything else stays a key/value tree
  eq(pretty.render({ b = 1, a = "x" }), 'a = "x"\nb = 1')
  eq(pretty.render(require("mpic.core.util").null), "null")
end)
