-- mpic.geo: great-circle distance between perspective locations.
--
-- Locations are tables {lat = degrees, lon = degrees}. Distances use the
-- haversine formula on a sphere of radius R = 6371.0088 km (the IUGG mean
-- Earth radius). Two perspectives closer than MIN_DISTANCE_KM (500 km, BR
-- "distinct") are "too close"; the relation is symmetric. Bad locations are
-- misuse and raise.
local type, error, string_format = type, error, string.format
local math_rad, math_sin, math_cos, math_asin, math_sqrt, math_min =
  math.rad, math.sin, math.cos, math.asin, math.sqrt, math.min

local M = {}

M.EARTH_RADIUS_KM = 6371.0088
M.MIN_DISTANCE_KM = 500

-- Returns true when loc is a valid {lat, lon}; otherwise nil, reason.
function M.check_location(loc)
  if type(loc) ~= "table" then return nil, "location is not a table" end
  local lat, lon = loc.lat, loc.lon
  if type(lat) ~= "number" or lat ~= lat or lat < -90 or lat > 90 then
    return nil, "location.lat must be a number in [-90, 90]"
  end
  if type(lon) ~= "number" or lon ~= lon or lon < -180 or lon > 180 then
    return nil, "location.lon must be a number in [-180, 180]"
  end
  return true
end

local function checked(loc, what)
  local ok, why = M.check_location(loc)
  if not ok then error(string_format("geo: %s: %s", what, why), 3) end
  return loc
end

-- Haversine great-circle distance in km.
function M.distance_km(a, b)
  checked(a, "first location")
  checked(b, "second location")
  local p1, p2 = math_rad(a.lat), math_rad(b.lat)
  local dp = p2 - p1
  local dl = math_rad(b.lon - a.lon)
  local s1, s2 = math_sin(dp / 2), math_sin(dl / 2)
  local h = s1 * s1 + math_cos(p1) * math_cos(p2) * s2 * s2
  return 2 * M.EARTH_RADIUS_KM * math_asin(math_sqrt(math_min(1, h)))
end

-- True when the two locations are less than min_km (default 500) apart.
function M.too_close(a, b, min_km) return M.distance_km(a, b) < (min_km or M.MIN_DISTANCE_KM) end

return M
