-- mpic.args: "--flag value" option parsing for the entry points of the
-- commands (mpic.cmd.*) and of the services (mpic.service.serve, agent), so
-- that neither layer needs the other for it.
local M = {}

--- Parse "--flag value" / "--flag" options. spec: name -> "value" | "flag" | "list".
function M.parse(args, spec, first)
  local opts, rest = {}, {}
  local i = first or 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w-]+)$")
    if name and spec[name] then
      if spec[name] == "flag" then
        opts[name] = true
      else
        if i == #args then return nil, "option --" .. name .. " needs a value" end
        i = i + 1
        if spec[name] == "list" then
          opts[name] = opts[name] or {}
          opts[name][#opts[name] + 1] = args[i]
        else
          opts[name] = args[i]
        end
      end
    elseif name then
      return nil, "unknown option --" .. name
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

return M
