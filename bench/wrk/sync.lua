-- POST /api/v1/activation/sync as the bench fleet's servers would, rotating through their
-- credentials. Arguments: the servers file (one "credential<TAB>fingerprint<TAB>etag<TAB>product"
-- a line) and a mode: "loop" goes round the thread's share of servers for the run's duration,
-- "once" sends each server of the share one sync and stops the thread (a sync an hour after the
-- last), "usage" loops like "loop" with the server's use of one application it holds moving
-- between 10 and 11 from one sync to the next (a change too small to be recorded at once; the
-- other modes report 10 every time).
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local requests, position, answered, mode = {}, 0, 0, "loop"

function init(args)
  mode = args[2] or "loop"
  local threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
  local index = 0
  for line in io.lines(args[1]) do
    if index % threads == thread_index then
      local credential, fingerprint, etag, product =
        line:match("^([^\t]*)\t([^\t]*)\t?([^\t]*)\t?([^\t]*)$")
      local headers = {
        ["Authorization"] = "Bearer " .. credential,
        ["Content-Type"] = "application/json",
      }
      if etag ~= "" then
        headers["If-None-Match"] = etag
      end
      -- Every server reports using 10 of an application it holds; in "usage" mode 11 every
      -- other time.
      local bodies = {'{}'}
      if product ~= "" then
        bodies = {string.format('{"%s": 10}', product)}
        if mode == "usage" then
          table.insert(bodies, string.format('{"%s": 11}', product))
        end
      end
      for _, usage in ipairs(bodies) do
        local body = string.format('{"fingerprint": "%s", "version": "bench", "usage": %s}',
          fingerprint, usage)
        table.insert(requests, wrk.format("POST", "/api/v1/activation/sync", headers, body))
      end
    end
    index = index + 1
  end
end

function request()
  if started_us == 0 then
    started_us = now_us()
  end
  position = position % #requests + 1
  return requests[position]
end

function response(status, headers, body)
  count_status(status)
  answered = answered + 1
  if mode == "once" and answered >= #requests then
    if finished_us == 0 then
      finished_us = now_us()
    end
    wrk.thread:stop()
  end
end
