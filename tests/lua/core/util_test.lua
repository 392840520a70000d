local T = require "mpic.testing"
local mpic = require "mpic"
local util = require "mpic.core.util"
local case, eq = T.case, T.eq

-- REFERENCE §2.1 worked vector
local KA = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

case("util_dns01_txt_value_vector", function()
  eq(mpic.base64url(mpic.sha256(KA)), "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8")
  eq(mpic.hex(mpic.sha256(KA)), "653471d42925d7eb4cd39a39cda8b34d3034c94cb90067ab78c8123560ba2e5f")
end)

case("util_dns_account_label_vector", function()
  local h = mpic.sha256("https://example.com/acme/acct/ExampleAccount")
  eq("_" .. mpic.base32(h:sub(1, 10)), "_ujmmovf2vn55tgye")
end)

case("util_base64_padding_rules", function()
  eq(util.base64("a"), "YQ==")
  eq(util.base64("ab"), "YWI=")
  eq(util.base64("abc"), "YWJj")
  eq(util.base64url("\xfb\xff"), "-_8")
  eq(util.base64(""), "")
  eq(util.base64_decode("YQ=="), "a")
  eq(util.base64_decode("-_8"), "\xfb\xff")
  eq(select(2, util.base64_decode("@@")), "invalid base64")
end)

case("util_json_roundtrip_and_null", function()
  local s = mpic.json.encode(
    { a = 1, b = { 1, 2, "x" }, c = mpic.json.null, d = true, e = mpic.json.array() },
    { sort = true }
  )
  eq(s, '{"a":1,"b":[1,2,"x"],"c":null,"d":true,"e":[]}')
  local v = mpic.json.decode(s)
  eq(v.a, 1)
  eq(v.c, mpic.json.null)
  eq(#v.e, 0)
  eq(mpic.json.encode(v.e), "[]")
end)

case("util_json_rejects_duplicates_and_garbage", function()
  local v, err = mpic.json.decode('{"a":1,"a":2}')
  eq(v, nil)
  T.contains(err, "duplicate")
  v, err = mpic.json.decode('{"a":')
  eq(v, nil)
  T.contains(err, "invalid JSON")
end)

case("util_json_invalid_utf8_replaced", function() eq(mpic.json.encode("a\xffb"), '"a\xef\xbf\xbdb"') end)

-- The compact encoder writes strings as jansson does (the sorted encoding
-- goes through jansson): every byte value, runs of plain bytes around escapes,
-- control characters, quotes, backslashes, DEL, valid and invalid UTF-8.
case("util_json_strings_as_jansson_writes_them", function()
  local samples = {
    "",
    "plain ascii run",
    'q"uote\\back\\slash"',
    "\0\1\31 \127 end",
    "tab\tnl\ncr\rff\fbs\b",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92",
    "bad \xff \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 cut \xe2\x82",
  }
  local all = {}
  for c = 0, 255 do
    all[#all + 1] = string.char(c)
  end
  samples[#samples + 1] = table.concat(all)
  local seed = 7
  for _ = 1, 200 do -- random byte strings, some long runs
    local t = {}
    for i = 1, (seed % 97) + 1 do
      seed = (seed * 1103515245 + 12345) % 2147483648
      t[i] = string.char(seed % 7 == 0 and (seed >> 8) % 256 or 97 + (seed >> 8) % 26)
    end
    samples[#samples + 1] = table.concat(t)
  end
  for i, v in ipairs(samples) do
    local mine = util.json_encode({ k = v })
    local jansson = util.json_encode({ k = v }, { sort = true })
    eq(mine, jansson, "sample " .. i)
  end
end)

case("util_json_cycle_is_an_error_not_a_crash", function()
  local t = {}
  t.self = t
  local s, err = mpic.json.encode(t)
  eq(s, nil)
  T.contains(err, "too deep")
end)

case("util_distance_frankfurt_paris_under_500km", function()
  local d = mpic.distance_km(50.1109, 8.6821, 48.8566, 2.3522)
  T.ok(d > 470 and d < 485, "got " .. d)
end)

case("util_regex_search_and_limits", function()
  eq(util.regex_search("^challenge_[0-9]*$", "challenge_111"), true)
  eq(util.regex_search("^challenge_[2-9]*$", "challenge_111"), false)
  eq(util.regex_search("ABC123[\\s]+(example.com|example.org)[\\s]+XYZ789", "ABC123\n\texample.org \tXYZ789"), true)
  local r, err = util.regex_search("(", "x")
  eq(r, nil)
  T.contains(err, "invalid regex")
  r, err = util.regex_search("^(a+)+$", string.rep("a", 40) .. "b")
  eq(r, nil)
  T.contains(err, "limit")
end)

case("util_json_decode_refuses_what_encode_would", function()
  local deep = string.rep("[", 70) .. string.rep("]", 70)
  local v, err = mpic.json.decode(deep)
  eq(v, nil)
  T.contains(err, "nesting deeper than 64")
  local ok64 = string.rep("[", 60) .. string.rep("]", 60)
  T.ok(mpic.json.encode(mpic.json.decode(ok64)), "what decodes also encodes")
end)

case("util_json_escapes_quotes_backslashes_and_controls", function()
  eq(util.json_encode('a"b\\c/d'), '"a\\"b\\\\c/d"')
  eq(util.json_encode("\b\f\n\r\t"), '"\\b\\f\\n\\r\\t"')
  eq(util.json_encode("\0\1\31\127"), '"\\u0000\\u0001\\u001F\127"')
  eq(util.json_encode("caf\u{e9} \u{1F600} \u{2028}"), '"caf\u{e9} \u{1F600} \u{2028}"')
  eq(util.json_encode({ ['k\n"ey'] = "v" }), '{"k\\n\\"ey":"v"}')
  local back = util.json_decode(util.json_encode({ s = 'x\0y"\\\1\31' }))
  eq(back.s, 'x\0y"\\\1\31')
end)

case("util_json_numbers_and_refusal_of_nan_and_inf", function()
  eq(
    util.json_encode({ 1, -7, 0.5, 1e20, -0.0, 2.0, 1e-7, math.mininteger }),
    "[1,-7,0.5,1e20,-0.0,2.0,9.9999999999999995e-8,-9223372036854775808]"
  )
  for _, bad in ipairs({ 0 / 0, 1 / 0, -1 / 0 }) do
    local s, err = util.json_encode({ x = { bad } })
    eq(s, nil)
    T.contains(err, "not finite")
  end
  eq(util.json_decode(util.json_encode(0.1)), 0.1)
end)

case("util_json_nesting_limit_and_bad_values", function()
  local t = {}
  local cur = t
  for _ = 1, 63 do
    cur[1] = {}
    cur = cur[1]
  end
  T.ok(util.json_encode(t), "64 levels encode")
  cur[1] = {}
  cur[1][1] = {}
  local s, err = util.json_encode(t)
  eq(s, nil)
  T.contains(err, "too deep")
  s, err = util.json_encode({ f = print })
  eq(s, nil)
  T.contains(err, "cannot be encoded")
  s, err = util.json_encode({ [true] = 1 })
  eq(s, nil)
  T.contains(err, "key")
  -- a failed encode leaves nothing behind for the next one
  eq(util.json_encode({ a = { "b" } }), '{"a":["b"]}')
end)

case("util_json_invalid_utf8_in_values_and_keys", function()
  eq(
    util.json_encode("\xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82"),
    '"\u{FFFD}( \u{FFFD}\u{FFFD}\u{FFFD} \u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD} \u{FFFD}\u{FFFD}"'
  )
  eq(util.json_encode("\xc0\xaf"), '"\u{FFFD}\u{FFFD}"') -- overlong "/"
  eq(util.json_encode({ ["k\xff"] = 1 }), '{"k\u{FFFD}":1}')
  eq(util.json_encode(util.utf8_sanitize("a\xffb\xe2\x82")), util.json_encode("a\xffb\xe2\x82"))
end)

case("util_json_arrays_objects_and_mixed_keys", function()
  eq(util.json_encode({}), "{}")
  eq(util.json_encode(setmetatable({}, util.array_mt)), "[]")
  eq(util.json_encode({ 1, util.null, "x", { true } }), '[1,null,"x",[true]]')
  eq(util.json_encode({ [2] = "b" }), '{"2":"b"}')
  local big = {}
  for i = 1, 5000 do
    big[i] = string.rep("x", 100)
  end
  eq(#util.json_encode(big), 5000 * 103 + 1)
end)
