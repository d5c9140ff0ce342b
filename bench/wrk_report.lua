-- wrk script for Santinel benchmarks: random paths from a file, an optional fixed body, and a
-- machine-readable summary line. Arguments (after `--`):
-- METHOD PATHS_FILE [BODY_FILE [AUTHORIZATION ["close"]]]; "close" sends `Connection: close`, so
-- every request opens a new connection (and, over HTTPS, a new TLS handshake).
local paths = {}
local method = "GET"
local body = nil
local headers = { ["Accept"] = "application/fhir+json" }

function init(args)
  method = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  if args[3] ~= nil and args[3] ~= "" then
    local f = assert(io.open(args[3], "rb"))
    body = f:read("*a")
    f:close()
    headers["Content-Type"] = "application/fhir+json"
  end
  if args[4] ~= nil and args[4] ~= "" then
    headers["Authorization"] = args[4]
  end
  if args[5] == "close" then
    headers["Connection"] = "close"
  end
  math.randomseed(os.time())
end

function request()
  return wrk.format(method, paths[math.random(#paths)], headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
