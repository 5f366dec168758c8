-- wrk script for bench_serve_wrk.py: POST /search by stored id, cycling through the ids listed
-- in the file named by the environment variable WRK_IDS (one per line), k and mode from WRK_K
-- and WRK_MODE.  Each connection starts at its own offset, so the load spreads over the ids.
local ids = {}
local k = tonumber(os.getenv("WRK_K") or "10")
local mode = os.getenv("WRK_MODE") or "region"
for line in io.lines(os.getenv("WRK_IDS")) do
  if #line > 0 then ids[#ids + 1] = line end
end
local counter = 0

function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  local id = ids[(i % #ids) + 1]
  local body = string.format('{"ids": ["%s"], "k": %d, "mode": "%s"}', id, k, mode)
  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"errors_status\": %d, \"errors_connect\": %d, \"errors_read\": %d, \"errors_write\": %d, \"errors_timeout\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
