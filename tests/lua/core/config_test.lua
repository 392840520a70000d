local T = require "mpic.testing"
local config = require "mpic.config"
local case, eq = T.case, T.eq

local GOOD = [[
issuer:
  caa_domains: [ca.example]
primary: primary
perspectives:
  - {id: primary, rir: ARIN, location: {lat: 39.0, lon: -77.5}, resolvers: ["127.0.0.1:53"]}
  - {id: fra, rir: RIPE NCC, location: {lat: 50.1, lon: 8.7}, resolvers: ["127.0.0.1:5302"]}
  - {id: sgp, rir: apnic, location: {lat: 1.35, lon: 103.8}, agent: {url: "https://sgp.example:8443", address: 192.0.2.8, ca: ca.pem, cert: c.pem, key: k.pem}}
]]

case("config_valid_file_gets_defaults_and_canonical_rirs", function()
  local cfg = assert(config.parse(GOOD, "/etc/mpic/perspectives.yaml"))
  eq(cfg.defaults.perspective_count, 5)
  eq(cfg.network.allow_reserved_ips, false)
  eq(cfg.perspectives[2].rir, "RIPE")
  eq(cfg.perspectives[3].rir, "APNIC")
  eq(cfg.perspectives[3].agent.ca, "/etc/mpic/ca.pem")
  eq(cfg.audit.path, "/etc/mpic/audit.jsonl")
end)

local function err_of(text)
  local cfg, err = config.parse(text, "p.yaml")
  eq(cfg, nil)
  return err
end

case("config_wrong_type_names_file_and_key_path", function()
  local err = err_of(GOOD:gsub("lat: 1.35", 'lat: "north"'))
  T.contains(err, "p.yaml: perspectives[2].location.lat: expected number, got string")
end)

case(
  "config_unknown_key_reported",
  function() T.contains(err_of(GOOD .. "colour: blue\n"), "p.yaml: colour: unknown key") end
)

case(
  "config_missing_required_key_reported",
  function() T.contains(err_of("perspectives: []\n"), "p.yaml: issuer: missing required key") end
)

case(
  "config_out_of_range_latitude_reported",
  function() T.contains(err_of(GOOD:gsub("lat: 39.0", "lat: 91")), "perspectives[0].location.lat: must be <= 90") end
)

case(
  "config_unknown_rir_reported",
  function() T.contains(err_of(GOOD:gsub("rir: ARIN", "rir: MARS")), 'perspectives[0].rir: unknown value "MARS"') end
)

case(
  "config_duplicate_perspective_id_reported",
  function()
    T.contains(err_of(GOOD:gsub("id: fra", "id: primary")), 'perspectives[1].id: duplicate perspective id "primary"')
  end
)

case(
  "config_primary_must_exist",
  function()
    T.contains(err_of(GOOD:gsub("primary: primary", "primary: nowhere")), 'primary: no perspective has id "nowhere"')
  end
)

case(
  "config_local_or_remote_not_both",
  function()
    T.contains(
      err_of(
        GOOD:gsub(
          'resolvers: %["127.0.0.1:5302"%]',
          'resolvers: ["127.0.0.1:5302"], agent: {url: u, ca: a, cert: b, key: c}'
        )
      ),
      "perspectives[1]: a perspective is either local"
    )
  end
)

case(
  "config_list_where_mapping_expected",
  function() T.contains(err_of("issuer: [a]\nperspectives: []\n"), "issuer: expected mapping, got list") end
)

case("config_yaml_error_names_file", function() T.contains(err_of("issuer: {\n"), "p.yaml: line") end)

case("config_reports_every_problem", function()
  local err = err_of(GOOD:gsub("lat: 1.35", "lat: x"):gsub("lon: 8.7", "lon: y"))
  T.contains(err, "perspectives[1].location.lon")
  T.contains(err, "perspectives[2].location.lat")
end)

case(
  "config_agent_url_must_be_https",
  function()
    T.contains(
      err_of(GOOD:gsub("https://sgp.example:8443", "http://192.0.2.1:8443")),
      "perspectives[2].agent.url: must be an https:// URL"
    )
  end
)

case("config_agent_address_is_an_optional_pin", function()
  local cfg = assert(config.parse(GOOD, "p.yaml"))
  eq(cfg.perspectives[3].agent.address, "192.0.2.8")
  cfg = assert(config.parse(GOOD:gsub("address: 192.0.2.8, ", ""), "p.yaml"))
  eq(cfg.perspectives[3].agent.address, nil)
end)

case("config_agent_pinned_key_is_checked", function()
  local pin = "sha256//" .. string.rep("A", 43) .. "="
  local cfg = assert(config.parse(GOOD:gsub("key: k.pem}", 'key: k.pem, pinned_key: "' .. pin .. '"}'), "p.yaml"))
  eq(cfg.perspectives[3].agent.pinned_key, pin)
  assert(config.parse(GOOD:gsub("key: k.pem}", 'key: k.pem, pinned_key: "' .. pin .. ";" .. pin .. '"}'), "p.yaml"))
  for _, bad in ipairs({ "sha1//AAAA", "sha256//short=", pin .. ";", pin .. ";junk" }) do
    T.contains(
      err_of(GOOD:gsub("key: k.pem}", 'key: k.pem, pinned_key: "' .. bad .. '"}')),
      "perspectives[2].agent.pinned_key: must be sha256//BASE64"
    )
  end
end)

case("config_agent_server_tls_files_relative_to_config", function()
  local cfg =
    assert(config.parse(GOOD .. "agent_server: {cert: a.pem, key: a.key, client_ca: ca.pem}\n", "/etc/mpic/agent.yaml"))
  eq(cfg.agent_server, { cert = "/etc/mpic/a.pem", key = "/etc/mpic/a.key", client_ca = "/etc/mpic/ca.pem" })
  T.contains(err_of(GOOD .. "agent_server: {cert: a.pem}\n"), "agent_server.key: missing required key")
end)
