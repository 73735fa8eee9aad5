-- wrk script for every bench scenario; BENCH_MODE picks the request:
--   (unset)  the URL as given, the same request every time (wrk builds it once);
--   user     GET <path>&user_id=<random user>, BENCH_USERS users;
--   post     POST <path> with a JSON listing for a random user, BENCH_USERS users;
--   login    POST <path> with the JSON body BENCH_BODY (a user id and its password);
--   patch    PATCH <path> with a random price and `Authorization: Bearer BENCH_TOKEN`.
-- BENCH_GZIP=1 adds `Accept-Encoding: gzip` to every request (the *_gzip scenarios).
-- done() prints one line "BENCH_JSON {...}": counts, errors, latency percentiles.
-- Error responses are wrk's own count of statuses >= 400 (our services never answer 1xx/3xx):
-- a Lua response() hook would count them too, but costs wrk ~6% on the hello-world ceiling.
local mode = os.getenv("BENCH_MODE") or ""
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
if os.getenv("BENCH_GZIP") == "1" then
   wrk.headers["Accept-Encoding"] = "gzip"
end
function init(args)
   math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

if mode == "user" then
   request = function()
      local sep = wrk.path:find("?", 1, true) and "&" or "?"
      return wrk.format("GET", wrk.path .. sep .. "user_id=" .. math.random(users))
   end
elseif mode == "post" then
   local kinds = {"rent", "sale"}
   request = function()
      local body = string.format('{"user_id":%d,"listing_type":"%s","price":%d}',
         math.random(users), kinds[math.random(2)], math.random(1000, 2000000))
      return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
   end
elseif mode == "login" then
   local body = os.getenv("BENCH_BODY")
   request = function()
      return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
   end
elseif mode == "patch" then
   local headers = {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
   request = function()
      local body = string.format('{"price":%d}', math.random(1000, 2000000))
      return wrk.format("PATCH", wrk.path, headers, body)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"ok":%d,"non_2xx":%d,' ..
      '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"bytes":%d}\n',
      summary.requests, summary.duration, summary.requests - e.status, e.status,
      e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, summary.bytes))
end
