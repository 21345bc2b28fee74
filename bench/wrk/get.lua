-- GET one path (given on the command line, with its headers as -H) and count the statuses.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

function response(status, headers, body)
  count_status(status)
end
