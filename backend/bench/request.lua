-- wrk script for bench/run.py, adapted from /work/shared/perf-ref/request.lua:
-- method, body, bearer token and extra headers from env vars, a count of responses
-- per HTTP status, and one machine-readable summary line at the end.
--
--   WRK_METHOD      GET (default) | POST | PATCH ...
--   WRK_TOKEN       bearer token -> "Authorization: Bearer <token>"
--   WRK_BODY        request body (string)         | WRK_BODY_FILE  path to body file
--   WRK_CTYPE       Content-Type (default application/json when a body is given)
--   WRK_HEADERS     extra headers, "Name: value|Name2: value2"
--   WRK_STATUS      "0" turns off the per-status count (then "statuses" is empty)
--
-- Example:
--   WRK_TOKEN=... WRK_METHOD=POST WRK_BODY='{"title":"Buy milk"}' \
--     wrk -t1 -c64 -d15s --latency -s bench/request.lua http://127.0.0.1:8100/api/v1/tasks
--
-- The request is static (built once), which keeps wrk's own CPU cost minimal. The
-- response() hook only bumps a counter; wrk's own errors.status counts status > 399
-- alone, the harness wants every non-2xx. done() prints one line starting with WRKJSON.

local method = os.getenv("WRK_METHOD")
if method and method ~= "" then wrk.method = method end

local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

local body = os.getenv("WRK_BODY")
local body_file = os.getenv("WRK_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("WRK_CTYPE") or "application/json"
elseif os.getenv("WRK_CTYPE") then
  wrk.headers["Content-Type"] = os.getenv("WRK_CTYPE")
end

local extra = os.getenv("WRK_HEADERS")
if extra and extra ~= "" then
  for pair in string.gmatch(extra, "[^|]+") do
    local k, v = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    if k then wrk.headers[k] = v end
  end
end

-- Each wrk thread runs its own Lua state: setup() keeps a handle on every thread so
-- done() can add up their counters (a global, readable through thread:get()).
local threads = {}
setup = function(thread) table.insert(threads, thread) end

statuses = {}
if os.getenv("WRK_STATUS") ~= "0" then
  response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,' ..
    '"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), table.concat(parts, ",")))
end
