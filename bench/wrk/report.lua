-- Shared by the bench's wrk scripts: counts statuses per thread and prints one JSON line.
-- Errors are what wrk counts (connect, read, write, timeout) plus every answer that is not
-- 2xx or 3xx.

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } bench_timeval;
  int gettimeofday(bench_timeval *tv, void *tz);
]]

local threads = {}
statuses = {}
-- A thread that stops early (sync.lua's "once" mode) records when it started and finished, so
-- the rate is taken over the time the threads worked rather than the whole -d duration.
started_us, finished_us = 0, 0

function now_us()
  local tv = ffi.new("bench_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function count_status(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged, first, last, all_finished = {}, nil, 0, true
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
    local started, finished = thread:get("started_us"), thread:get("finished_us")
    if started > 0 and (first == nil or started < first) then
      first = started
    end
    if finished == 0 then
      all_finished = false
    elseif finished > last then
      last = finished
    end
  end
  local active = summary.duration
  if all_finished and first ~= nil and last > first then
    active = last - first
  end
  local parts, bad = {}, 0
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, n))
    if status < 200 or status >= 400 then
      bad = bad + n
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, ' ..
    '"bad_status": %d, "statuses": {%s}, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d}\n',
    summary.requests, active, e.connect + e.read + e.write + e.timeout, bad,
    table.concat(parts, ", "), latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
