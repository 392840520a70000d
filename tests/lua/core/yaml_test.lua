local T = require "mpic.testing"
local yaml = require "mpic.core.yaml"
local case, eq, ok = T.case, T.eq, T.ok

case("yaml_scalars_follow_core_schema", function()
  local v = assert(yaml.load([[
a: 1
b: -2.5
c: true
d: False
e: ~
f: null
g: "1"
h: '3.0'
i: 0x1f
j: hello world
k: 1e3
l: .inf
]]))
  eq(v.a, 1)
  eq(math.type(v.a), "integer")
  eq(v.b, -2.5)
  eq(v.c, true)
  eq(v.d, false)
  eq(v.e, nil)
  eq(v.f, nil)
  eq(v.g, "1")
  eq(v.h, "3.0")
  eq(v.i, 31)
  eq(v.j, "hello world")
  eq(v.k, 1000.0)
  eq(v.l, math.huge)
end)

case("yaml_anchors_and_aliases_share_values", function()
  local v = assert(yaml.load([[
base: &loc {lat: 50.1, lon: 8.7}
a: *loc
list: [&x 5, *x]
]]))
  eq(v.a, { lat = 50.1, lon = 8.7 })
  ok(v.a == v.base, "alias refers to the anchored table")
  eq(v.list, { 5, 5 })
end)

case("yaml_alias_bomb_costs_nothing", function()
  local lines = { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" }
  for i = 1, 20 do
    lines[#lines + 1] = ("a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]"):format(
      i,
      i,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1,
      i - 1
    )
  end
  local t0 = require("mpic").now()
  local v = assert(yaml.load(table.concat(lines, "\n")))
  ok(v.a20[1] == v.a19, "shared, not copied")
  ok(require("mpic").now() - t0 < 1000)
end)

case("yaml_unknown_alias_is_an_error", function()
  local v, err = yaml.load("a: *nope\n")
  eq(v, nil)
  T.contains(err, "line 1")
end)

case("yaml_multiple_documents_rejected", function()
  local v, err = yaml.load("a: 1\n---\nb: 2\n")
  eq(v, nil)
  T.contains(err, "more than one YAML document")
  T.contains(err, "line 2")
end)

case("yaml_single_document_with_markers_accepted", function() eq(yaml.load("---\na: 1\n...\n"), { a = 1 }) end)

case("yaml_empty_stream_is_nil", function()
  local v, err = yaml.load("")
  eq(v, nil)
  eq(err, nil)
end)

case("yaml_duplicate_key_rejected_with_position", function()
  local v, err = yaml.load("a: 1\nb: 2\na: 3\n")
  eq(v, nil)
  T.contains(err, "duplicate key 'a'")
  T.contains(err, "line 3")
end)

case("yaml_non_utf8_rejected", function()
  local v, err = yaml.load("a: \xff\xfe\n")
  eq(v, nil)
  ok(err and #err > 0, "error text")
end)

case("yaml_syntax_error_has_position", function()
  local v, err = yaml.load("a: [1, 2\nb: 3\n")
  eq(v, nil)
  T.contains(err, "line")
end)

case("yaml_complex_key_rejected", function()
  local v, err = yaml.load("? [a, b]\n: 1\n")
  eq(v, nil)
  T.contains(err, "mapping keys must be scalars")
end)

case("yaml_deep_nesting_rejected", function()
  local v, err = yaml.load(string.rep("[", 200) .. string.rep("]", 200))
  eq(v, nil)
  T.contains(err, "nesting too deep")
end)

case("yaml_quoted_strings_keep_bytes", function() eq(yaml.load('a: "tab\\tnul\\0end"\n'), { a = "tab\tnul\0end" }) end)
