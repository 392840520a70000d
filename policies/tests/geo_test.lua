-- Haversine distances (R = 6371.0088 km) and the 500 km "distinct" rule.
local T = require "mpic.testing"
local geo = require "mpic.geo"
local case, eq, ok = T.case, T.eq, T.ok

local FRA = { lat = 50.1109, lon = 8.6821 }
local PAR = { lat = 48.8566, lon = 2.3522 }
local LON = { lat = 51.5074, lon = -0.1278 }
local DUB = { lat = 53.3498, lon = -6.2603 }
local ZRH = { lat = 47.3769, lon = 8.5417 }
local NYC = { lat = 40.7128, lon = -74.0060 }

local function near(got, want, tol, what)
  ok(math.abs(got - want) <= tol, string.format("%s: %.3f km, expected %.1f +/- %.1f", what, got, want, tol))
end

case("distance_frankfurt_paris_is_about_478_km_too_close", function()
  near(geo.distance_km(FRA, PAR), 478, 2, "FRA-PAR")
  ok(geo.too_close(FRA, PAR))
end)

case("distance_london_dublin_is_about_463_km_too_close", function()
  near(geo.distance_km(LON, DUB), 463, 2, "LON-DUB")
  ok(geo.too_close(DUB, LON))
end)

case("distance_frankfurt_zurich_is_about_304_km", function() near(geo.distance_km(FRA, ZRH), 304, 2, "FRA-ZRH") end)

case("distance_is_symmetric_and_zero_for_same_point", function()
  eq(geo.distance_km(FRA, NYC), geo.distance_km(NYC, FRA))
  eq(geo.distance_km(FRA, FRA), 0.0)
  ok(not geo.too_close(FRA, NYC))
end)

case("distance_uses_mean_earth_radius", function()
  -- A quarter meridian is (pi / 2) * R.
  near(geo.distance_km({ lat = 0, lon = 0 }, { lat = 90, lon = 0 }), math.pi / 2 * 6371.0088, 1e-6, "quarter")
  -- Antipodes: pi * R.
  near(geo.distance_km({ lat = 0, lon = 0 }, { lat = 0, lon = 180 }), math.pi * 6371.0088, 1e-6, "antipode")
end)

case("distance_bad_location_raises", function()
  T.raises(function() geo.distance_km({ lat = 91, lon = 0 }, FRA) end, "lat")
  T.raises(function() geo.distance_km(FRA, { lat = 0 }) end, "lon")
  T.raises(function() geo.distance_km(nil, FRA) end, "location")
  eq(geo.check_location({ lat = 0 / 0, lon = 0 }), nil)
end)
