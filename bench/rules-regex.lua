-- bench/rules-regex.tc written by hand as an Envoy Lua filter (variant B2 of the benchmark).
-- Lua patterns have no alternation and no case-insensitive flag, so each regex becomes what a
-- Lua user writes instead: the value lower-cased once, then one string.find per alternative
-- (plain finds where the alternative is plain text), or a capture checked against a table.
-- Same 20 rules, same order, same colors; first match wins; each input read at most once.
-- bench/run.py checks that it colors every request of bench/mix.json as traffic-color does.

local bit = require("bit")
local band, bor, bxor, lshift, rshift, rol, tobit =
  bit.band, bit.bor, bit.bxor, bit.lshift, bit.rshift, bit.rol, bit.tobit
local byte, char, find, match, gmatch, gsub, lower, sub =
  string.byte, string.char, string.find, string.match, string.gmatch, string.gsub, string.lower, string.sub

local COLOR_HEADER = "x-version-route"

-- ---------------------------------------------------------------- murmur3_x86_32, seed 0

-- Low 32 bits of a * b for 32-bit integers (doubles hold 53 bits: split b in halves).
local function mul32(a, b)
  local lo = band(b, 0xffff)
  local hi = band(rshift(b, 16), 0xffff)
  return tobit(a * lo + tobit(a * hi) * 65536)
end

local C1, C2 = tobit(0xcc9e2d51), tobit(0x1b873593)
local F1, F2, N = tobit(0x85ebca6b), tobit(0xc2b2ae35), tobit(0xe6546b64)

local function murmur3(s)
  local h = 0
  local len = #s
  local nblocks = len - len % 4
  for i = 1, nblocks, 4 do
    local b1, b2, b3, b4 = byte(s, i, i + 3)
    local k = bor(b1, lshift(b2, 8), lshift(b3, 16), lshift(b4, 24))
    k = mul32(rol(mul32(k, C1), 15), C2)
    h = rol(bxor(h, k), 13)
    h = tobit(mul32(h, 5) + N)
  end
  local rem = len - nblocks
  if rem > 0 then
    local k = 0
    if rem == 3 then k = bxor(k, lshift(byte(s, nblocks + 3), 16)) end
    if rem >= 2 then k = bxor(k, lshift(byte(s, nblocks + 2), 8)) end
    k = bxor(k, byte(s, nblocks + 1))
    h = bxor(h, mul32(rol(mul32(k, C1), 15), C2))
  end
  h = bxor(h, len)
  h = mul32(bxor(h, rshift(h, 16)), F1)
  h = mul32(bxor(h, rshift(h, 13)), F2)
  h = bxor(h, rshift(h, 16))
  if h < 0 then h = h + 4294967296 end
  return h
end

-- Unleash's normalizedValue: murmur3(group .. ":" .. key) % 100 + 1.
local function bucket(key, group)
  if key == nil then return nil end
  return murmur3(group .. ":" .. key) % 100 + 1
end

-- ----------------------------------------------------------------------------- cookies

local function parse_cookies(header)
  local cookies = {}
  if header == nil then return cookies end
  for pair in gmatch(header, "[^;]+") do
    local name, value = match(pair, "^%s*([^=]-)%s*=%s*(.-)%s*$")
    if name ~= nil and cookies[name] == nil then
      cookies[name] = match(value, '^"(.*)"$') or value
    end
  end
  return cookies
end


local function starts_with(s, prefix)
  return s ~= nil and sub(s, 1, #prefix) == prefix
end

local TENANTS = { acme = true, globex = true, initech = true, umbrella = true }
local USERS = { ["u-100231"] = true, ["u-9"] = true, ["u-42"] = true }
local DACH_LANGS = { de = true, fr = true, it = true }
local DACH_REGIONS = { CH = true, AT = true, LI = true }
local NORDIC_LANGS = { sv = true, nb = true, nn = true, da = true, fi = true }

local function any_plain(s, words)
  for i = 1, #words do
    if find(s, words[i], 1, true) then return true end
  end
  return false
end

local BOTS = { "bot", "crawler", "spider", "slurp" }
local AUTOMATION = { "headless", "phantomjs", "puppeteer", "playwright" }
local IOS_DEVICES = { "iPhone", "iPad", "iPod" }

-- (iPhone|iPad|iPod).*OS 1[0-5]_ : a device name, and later an iOS 10-15 version.
local function old_ios(ua)
  for i = 1, #IOS_DEVICES do
    local s, e = find(ua, IOS_DEVICES[i], 1, true)
    if s and find(ua, "OS 1[0-5]_", e + 1) then return true end
  end
  return false
end

-- ^(sv|nb|nn|da|fi)(-[A-Z][A-Z])?(,|;|$)
local function nordic(lang)
  local l, rest = match(lang, "^(%l%l)(.*)$")
  if l == nil or not NORDIC_LANGS[l] then return false end
  return rest == "" or find(rest, "^[,;]") ~= nil or find(rest, "^%-%u%u[,;]") ~= nil
      or find(rest, "^%-%u%u$") ~= nil
end

local function cookie(r, name)
  local cookies = r.cookies
  if cookies == nil then
    cookies = parse_cookies(r.headers:get("cookie"))
    r.cookies = cookies
  end
  return cookies[name]
end

local function color(headers)
  local r = { headers = headers }
  local path = match(headers:get(":path") or "", "^[^?#]*")
  local method = headers:get(":method")

  if headers:get("x-opt-in") == "1" then return "canary" end
  if cookie(r, "beta") == "yes" then return "canary" end
  if TENANTS[headers:get("x-tenant") or ""] then return "green" end
  local user = headers:get("x-user-id")
  if USERS[user or ""] then return "canary" end
  local ua = headers:get("user-agent") or ""
  local lua = lower(ua)
  if any_plain(lua, BOTS) then return "stable" end
  if any_plain(lua, AUTOMATION) then return "stable" end
  local version = headers:get("x-app-version") or ""
  if find(version, "^%d+%.%d+%.%d+%-rc%.%d+$") then return "canary" end
  if find(version, "^%d+%.%d+%.%d+%-alpha%.%d+$") or find(version, "^%d+%.%d+%.%d+%-beta%.%d+$") then
    return "blue"
  end
  if old_ios(ua) then return "stable" end
  if (find(ua, "[Mm]obile") or find(ua, "[Tt]ablet") or find(ua, "[Aa]ndroid"))
      and starts_with(path, "/m/") then
    return "canary"
  end
  if find(lua, "firefox/1[3-9]%d") or find(lua, "fxios/1[3-9]%d") then return "canary" end
  if find(lua, "edg%l*/%d") then return "blue" end
  if find(lua, "sm%-%l%d%d%d") or find(lua, "gt%-%l%d%d%d") then return "canary" end
  local lang = headers:get("accept-language") or ""
  local l, region = match(lang, "^(%l%l)%-(%u%u)")
  if l ~= nil and DACH_LANGS[l] and DACH_REGIONS[region] then return "green" end
  if nordic(lang) then return "blue" end
  local resource = match(path, "^/%l+/v%d+/(%l+)/%d+$") or match(path, "^/%l+/v%d+/(%l+)/%d+/items$")
  if (resource == "orders" or resource == "returns") and method == "GET" then return "canary" end
  local host = lower(match(headers:get(":authority") or "", "^[^:]*"))
  local env = match(host, "^[%l%d%-]+%.(%l+)%.shop%.example%.com$")
  if env == "staging" or env == "preview" then return "preview" end
  local area = match(headers:get("x-region") or "", "^(%l%l)%-%l+%-%d$")
  if (area == "eu" or area == "me") and user ~= nil and bucket(user, "eu-ramp") <= 30 then
    return "canary"
  end
  if starts_with(path, "/search") then
    local session = cookie(r, "session")
    if session ~= nil and bucket(session, "search-ramp") <= 40 then return "canary" end
  end
  local device = headers:get("x-device-id")
  if find(version, "^[5-9]%.%d+%.%d+$") and device ~= nil and bucket(device, "app-ramp") <= 50 then
    return "blue"
  end
  return "stable"
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local c = color(headers)
  -- A client must not choose its color: the computed one always replaces what it sent.
  headers:replace(COLOR_HEADER, c)
  request_handle:clearRouteCache()
end
