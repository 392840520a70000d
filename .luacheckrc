-- luacheck configuration: Lua 5.4, the library under lua/, the policies and
-- the tests. Policies run in a sandbox whose globals are a subset of these.
std = "lua54"
max_line_length = 130
files["tests/**/*_test.lua"] = { max_line_length = false }
files["policies/tests/*_test.lua"] = { max_line_length = false }
