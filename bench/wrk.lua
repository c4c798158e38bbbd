-- wrk script for bench/run.py.
-- Arguments after "--": MODE ("get" or "book"), PATH, DATAFILE ("-" for none), THREADS, CSRF.
--   get:  GET PATH; with a DATAFILE of cookies ("name=value"), each request carries the next one (round robin).
--   book: POST PATH; each DATAFILE line is "cookie slot submission_key patient", used once; PATIENT numbers
--         the patient's e-mail address and phone (each booking a different patient, as in life: one patient's
--         bookings queue on the per-contact lock and count each other, bookings/services.py).
-- Prints one line: RESULT {json} with the figures and the status counts.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  mode, path, datafile, nthreads, csrf = args[1], args[2], args[3], tonumber(args[4]), args[5]
  lines, index, statuses = {}, 0, {}
  if datafile ~= "-" then
    local n = 0
    for line in io.lines(datafile) do
      if n % nthreads == id - 1 then table.insert(lines, line) end
      n = n + 1
    end
  end
end

function request()
  index = index + 1
  if mode == "get" then
    if #lines == 0 then return wrk.format("GET", path) end
    return wrk.format("GET", path, {["Cookie"] = lines[(index - 1) % #lines + 1]})
  end
  -- Past the end of the file a session would be reused: bench/run.py makes the file long enough.
  local session, slot, key, patient = lines[(index - 1) % #lines + 1]:match("(%S+) (%S+) (%S+) (%S+)")
  -- Each patient from their own address, as behind the clinic's proxy (bench/run.py trusts X-Forwarded-For):
  -- bookings from one address queue on its hourly counter row until they commit (clinic/ratelimit.py).
  local n = tonumber(patient)
  local headers = {
    ["Cookie"] = session .. "; csrftoken=" .. csrf,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256),
  }
  local body = "slot=" .. slot .. "&submission_key=" .. key .. "&first_name=Pat&last_name=Bench"
    .. "&email=pat" .. patient .. "%40example.org&phone=07700+9" .. string.format("%05d", patient % 100000)
    .. "&note=&consent=on&website=&csrfmiddlewaretoken=" .. csrf
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do table.insert(parts, string.format('"%d": %d', status, count)) end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
