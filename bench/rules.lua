-- bench/rules.tc written by hand as an Envoy Lua filter (variant B of the benchmark): what a
-- user writes today without traffic-color. Same 20 rules, same order, same colors; first match
-- wins. Written the way a careful user would: every input is read and parsed at most once, and
-- only when a rule needs it; murmur3_x86_32 on LuaJIT's `bit` library for sticky buckets
-- (the same numbers as Unleash and traffic-color); the bearer token's payload decoded with a
-- hand-rolled base64url and fields pulled out with patterns (no JSON parser in Envoy's Lua).
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

-- ------------------------------------------------------------------------ base64url, JSON

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
end

local function base64url_decode(s)
  s = gsub(s, "=+$", "")
  local out, n, acc, bits = {}, 0, 0, 0
  for i = 1, #s do
    local v = B64[byte(s, i)]
    if v == nil then return nil end
    acc = bor(lshift(acc, 6), v)
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      n = n + 1
      out[n] = band(rshift(acc, bits), 0xff)
    end
  end
  -- string.char takes at most a few thousand arguments: tokens are far smaller.
  return char(unpack(out, 1, n))
end

-- The JWT payload (JSON text) from an Authorization header, or nil.
local function token_payload(authorization)
  if authorization == nil then return nil end
  local token = match(authorization, "^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
  if token == nil or #token > 16384 then return nil end
  local payload = match(token, "^[^.]*%.([^.]*)%.[^.]*$")
  if payload == nil then return nil end
  local json = base64url_decode(payload)
  if json == nil or sub(json, 1, 1) ~= "{" then return nil end
  -- Even an unverified token must not be used once expired (or before nbf).
  local now = os.time()
  local exp = match(json, '"exp"%s*:%s*(-?[%d.eE+-]+)')
  if exp ~= nil and not (now < tonumber(exp)) then return nil end
  local nbf = match(json, '"nbf"%s*:%s*(-?[%d.eE+-]+)')
  if nbf ~= nil and not (now >= tonumber(nbf)) then return nil end
  return json
end

-- A top-level string claim (no escapes in the values this rule set compares).
local function claim_string(json, name)
  if json == nil then return nil end
  return match(json, '"' .. name .. '"%s*:%s*"([^"]*)"')
end

-- Whether an array-of-strings claim holds `value`.
local function claim_array_contains(json, name, value)
  if json == nil then return false end
  local items = match(json, '"' .. name .. '"%s*:%s*%[([^%]]*)%]')
  if items == nil then return false end
  for item in gmatch(items, '"([^"]*)"') do
    if item == value then return true end
  end
  return false
end

-- ------------------------------------------------------------------- cookies, query strings

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

local function hex_byte(h) return char(tonumber(h, 16)) end

local function url_decode(s)
  s = gsub(s, "%+", " ")
  return (gsub(s, "%%(%x%x)", hex_byte))
end

local function parse_query(path)
  local params = {}
  local query = match(path, "%?([^#]*)")
  if query == nil then return params end
  for pair in gmatch(query, "[^&]+") do
    local key, value = match(pair, "^([^=]*)=?(.*)$")
    key = url_decode(key)
    if params[key] == nil then params[key] = url_decode(value) end
  end
  return params
end

local QA_USERS = { alice = true, bob = true, carol = true, dave = true, erin = true }
local BLUE_TESTERS = { ["user-a"] = true, ["user-b"] = true, ["user-c"] = true }
local EU_REGIONS = { ["eu-west-1"] = true, ["eu-central-1"] = true }

local function starts_with(s, prefix)
  return s ~= nil and sub(s, 1, #prefix) == prefix
end

local function ends_with(s, suffix)
  return s ~= nil and (suffix == "" or sub(s, -#suffix) == suffix)
end

-- ----------------------------------------------------------------------------- the rules

-- Each input is read and parsed at most once per request, on first use; `r` holds them.
local function cookie(r, name)
  local cookies = r.cookies
  if cookies == nil then
    cookies = parse_cookies(r.headers:get("cookie"))
    r.cookies = cookies
  end
  return cookies[name]
end

local function param(r, name)
  local query = r.query
  if query == nil then
    query = parse_query(r.raw_path)
    r.query = query
  end
  return query[name]
end

local function token(r)
  if r.payload == nil then
    r.payload = token_payload(r.headers:get("authorization")) or false
  end
  return r.payload or nil
end

local function color(headers)
  local raw_path = headers:get(":path") or ""
  local r = { headers = headers, raw_path = raw_path }
  local path = match(raw_path, "^[^?#]*")
  local method = headers:get(":method")

  if headers:get("x-canary") == "true" then return "canary" end
  if cookie(r, "canary") == "always" then return "canary" end
  if cookie(r, "canary") == "never" then return "stable" end
  if QA_USERS[headers:get("x-debug-user") or ""] then return "canary" end
  if ends_with(claim_string(token(r), "email"), "@shop.example.com")
      and headers:get("x-env") == "staging" then
    return "canary"
  end
  if BLUE_TESTERS[claim_string(token(r), "sub") or ""]
      and find(param(r, "version") or "", "^v2%.") then
    return "blue"
  end
  if claim_array_contains(token(r), "groups", "beta-testers") then return "canary" end
  if claim_string(token(r), "plan") == "enterprise" and starts_with(path, "/api/v2/reports") then
    return "green"
  end
  if claim_string(token(r), "role") == "admin" and method ~= nil and method ~= "GET" then
    return "stable"
  end
  if param(r, "preview") == "1" and headers:get("x-env") == "staging" then return "preview" end
  if starts_with(path, "/api/v3/") then return "v3" end
  if find(path, "^/api/v2/orders/%d+/items$") and method == "GET" then return "canary" end
  local authority = headers:get(":authority")
  if authority ~= nil and lower(match(authority, "^[^:]*")) == "beta.shop.example.com" then
    return "canary"
  end
  local ua = headers:get("user-agent")
  if ua ~= nil and find(ua, "ShopApp/%d+%.%d+ %(iOS") then return "canary" end
  local user = headers:get("x-user-id")
  if EU_REGIONS[headers:get("x-region") or ""] and user ~= nil
      and bucket(user, "eu-rollout") <= 20 then
    return "canary"
  end
  if starts_with(path, "/checkout") and user ~= nil and bucket(user, "checkout-v2") <= 10 then
    return "canary"
  end
  if starts_with(path, "/search") then
    local session = cookie(r, "session")
    if session ~= nil and bucket(session, "search-v2") <= 25 then return "canary" end
  end
  if param(r, "utm_campaign") == "spring-launch" then return "blue" end
  local lang = headers:get("accept-language")
  if lang ~= nil and find(lang, "^de") and starts_with(path, "/checkout") then return "green" end
  if method == "POST" and path == "/api/v2/cart" and headers:get("x-experiment") ~= nil then
    return "canary"
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
