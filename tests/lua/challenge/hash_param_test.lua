-- key_authorization_hash in its 43-character form: accepted exactly when it
-- is the canonical unpadded base64url of 32 bytes (the round trip in C gives
-- the same answers as the character and last-character rules).
local T = require "mpic.testing"
local C = require "mpic.challenge._common"
local util = require "mpic.core.util"
local case, eq = T.case, T.eq

-- the rules as written out: the alphabet, and a last character holding 2 zero bits
local function by_rules(s)
  if s:find("[^A-Za-z0-9_%-]") or not ("AEIMQUYcgkosw048"):find(s:sub(43), 1, true) then return nil end
  return s
end

case("hash_b64url_accepts_exactly_the_canonical_form", function()
  local good = util.base64url(util.sha256("key authorization"))
  eq(#good, 43)
  eq(C.hash_b64url(good), good)
  local prefix = good:sub(1, 42)
  for b = 0, 255 do -- every last byte
    local s = prefix .. string.char(b)
    eq(C.hash_b64url(s), by_rules(s), "last byte " .. b)
  end
  for pos = 1, 43, 6 do -- any byte at other positions
    for b = 0, 255 do
      local s = good:sub(1, pos - 1) .. string.char(b) .. good:sub(pos + 1)
      eq(C.hash_b64url(s), by_rules(s), "byte " .. b .. " at " .. pos)
    end
  end
  for i = 1, 300 do -- random 32-byte hashes
    local s = util.base64url(util.sha256(tostring(i)))
    eq(C.hash_b64url(s), s)
  end
  eq(C.hash_b64url(good:sub(1, 42) .. "="), nil)
  eq(C.hash_b64url(good:gsub("%-", "+"):gsub("_", "/")), by_rules(good:gsub("%-", "+"):gsub("_", "/")))
  -- the hex form still gives the base64url form
  eq(C.hash_b64url(util.hex(util.sha256("key authorization"))), good)
  eq(C.hash_b64url(42), nil)
end)
