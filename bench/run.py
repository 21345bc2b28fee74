"""`make bench`: the fleet benchmark, an instrument rather than a test.

For each tier (BENCH_TIER: `small`, `medium`, `large`, comma-separated) it builds or reuses a
fleet on PostgreSQL (bench/fleet.py), serves the portal with gunicorn and, beside it on the
next port with the same workers, the true floor (bench/floor.py: a bare Django app doing
`SELECT 1`). wrk drives both from loopback (bench/wrk/*.lua), 16 connections, every scenario
BENCH_REPEATS times in rounds, each round starting with the floor. Then the daily jobs run as
`manage.py run_daily_jobs` would, once with work due and once with nothing to do.

It prints a markdown table per tier (docs/benchmarks.md's) and writes bench/results.json;
`python -m bench.run --table` prints the tables of the last results again.
"""

import base64
import concurrent.futures
import http.cookiejar
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VAR = BENCH / "var"
WRK_DIR = BENCH / "wrk"
RESULTS_FILE = BENCH / "results.json"
HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
FLOOR_PORT = PORT + 1
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
PAGE_SECONDS = float(os.environ.get("BENCH_PAGE_SECONDS", "5"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# Sync workers take one connection per request, so the kernel spreads the load evenly over
# them; keep-alive workers tie each client connection to one worker for its lifetime.
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # threads contend for the GIL
# Servers the sync scenarios rotate through (each needs its current ETag fetched first).
SYNC_POOL = int(os.environ.get("BENCH_SYNC_POOL", "10000"))
# PostgreSQL sends a backend's table counters to pg_stat_user_tables at most every 10 s when
# idle; the writes-per-sync figure waits that long after a run before it reads them.
STATS_WAIT = float(os.environ.get("BENCH_STATS_WAIT", "11"))
# A quick look while working: only these scenarios (and the floor), no jobs, no results file.
ONLY = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
WRK = shutil.which("wrk")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Databases and processes -------------------------------------------------------------------


def bench_database_url(tier: str) -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name")
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") or "licensing"
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}_bench_{tier}"))


def admin_url(url: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/postgres"))


def database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def database_exists(url: str) -> bool:
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]
        ).fetchone()
    return found is not None


def recreate_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def app_env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "licensing_portal.settings.base",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
        "SECRET_HASH_KEY": "bench-secret-hash-key",
        "LICENSE_KEY_PASSPHRASE": "bench-license-key-passphrase",
        "LICENSE_ROOT_KEY_FILE": str(VAR / "root-key.pem"),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "EMAIL_FILE_PATH": str(VAR / "mail"),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def build_fleet(tier: str, db_url: str) -> dict[str, Any]:
    fleet_file = VAR / f"{database_name(db_url)}.json"  # written once the build is complete
    if fleet_file.exists() and database_exists(db_url) and not os.environ.get("BENCH_REBUILD"):
        log(f"{tier}: reusing the fleet in {database_name(db_url)} (BENCH_REBUILD=1 builds anew)")
        # The branch may have brought migrations since the fleet was built.
        for command in (["migrate", "--noinput"], ["createcachetable"]):
            subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=app_env(db_url),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        fleet: dict[str, Any] = json.loads(fleet_file.read_text())
        return fleet
    log(f"{tier}: building the fleet (small: through the services; large: COPY of a template)")
    fleet_file.unlink(missing_ok=True)
    recreate_database(db_url)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.build", tier, str(fleet_file)],
        cwd=ROOT,
        env=app_env(db_url),
        check=True,
    )
    log(f"{tier}: fleet built in {time.perf_counter() - started:.0f} s")
    built: dict[str, Any] = json.loads(fleet_file.read_text())
    return built


def start_gunicorn(app: str, port: int, db_url: str, probe: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            f"--bind={HOST}:{port}",
            f"--workers={WORKERS}",
            f"--worker-class={WORKER_CLASS}",
            f"--threads={THREADS}",
            "--keep-alive=30",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=app_env(db_url),
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{probe}", timeout=2) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    sys.exit(f"gunicorn ({app}) did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def worker_memory_mb(master: subprocess.Popen[bytes]) -> list[int]:
    children = subprocess.run(
        ["pgrep", "-P", str(master.pid)], capture_output=True, text=True
    ).stdout.split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
            if match:
                sizes.append(int(match.group(1)) // 1024)
    return sizes


# --- wrk -----------------------------------------------------------------------------------------


def wrk(
    url: str,
    *,
    seconds: float,
    script: str,
    args: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    command: list[str] = [
        WRK or "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout=10s",
        "-s",
        str(WRK_DIR / script),
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command += [url, "--", *args]
    env = {**os.environ, "BENCH_WRK_DIR": str(WRK_DIR), "BENCH_WRK_THREADS": str(WRK_THREADS)}
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH_RESULT "))
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds_run, 1) if seconds_run else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "errors": raw["socket_errors"] + raw["bad_status"],
        "statuses": raw["statuses"],
        "seconds": round(seconds_run, 2),
    }


# --- The scenarios -------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    label: str
    run: Callable[[], dict[str, Any]]
    warm: Callable[[], Any] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        rps = [r["rps"] for r in self.runs]
        p99 = [r["p99_ms"] for r in self.runs]
        summary: dict[str, Any] = {
            "label": self.label,
            "rps_median": round(statistics.median(rps), 1),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p99_ms_median": round(statistics.median(p99), 2),
            "p99_ms_max": max(p99),
            "errors": sum(r["errors"] for r in self.runs),
            "runs": self.runs,
        }
        alone = [r["alone_ms"] for r in self.runs if "alone_ms" in r]
        if alone:
            summary["alone_ms_median"] = round(statistics.median(alone), 1)
        if not all(r["requests"] for r in self.runs):
            summary["p99_ms_median"] = None  # a run in which no answer came back in time
        writes = [r["writes_per_sync"] for r in self.runs if "writes_per_sync" in r]
        if writes:
            summary["writes_per_sync_median"] = round(statistics.median(writes), 3)
        return summary


class Tables:
    """Row writes per table, from pg_stat_user_tables."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def snapshot(self) -> dict[str, int]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            ).fetchall()
        return dict(rows)

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        return {
            table: after[table] - before.get(table, 0)
            for table in after
            if after[table] - before.get(table, 0)
        }


def sync_time_columns(db_url: str) -> list[tuple[str, str]]:
    """The timestamps a sync keeps (last sync, last record...), wherever they live."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type = 'timestamp with time zone'"
            " AND column_name ~ '(sync|seen|record)' AND column_name !~ '^first_'"
            " AND table_name ~ '^(tokens|activation)'"
        ).fetchall()
    return [(table, column) for table, column in rows]


def set_sync_times(db_url: str, age: str) -> None:
    """Every fleet server last synced `age` ago (a Postgres interval)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table, column in sync_time_columns(db_url):
            conn.execute(
                f'UPDATE "{table}" SET "{column}" = now() - %s::interval'
                f' WHERE "{column}" IS NOT NULL',
                [age],
            )
        # This connection's own writes must be counted before the run, not in it.
        if conn.info.server_version >= 150000:
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute("SELECT 1")
    time.sleep(1)


def collect_etags(fleet: dict[str, Any], tier: str) -> Path:
    """Sync each pooled server once (200 with its document) and keep its ETag for the load."""
    servers_file = VAR / fleet["servers_file"]
    lines = servers_file.read_text().splitlines()[:SYNC_POOL]
    out: Path = servers_file.with_suffix(".sync.tsv")

    def one(line: str) -> str:
        credential, fingerprint = line.split("\t")[:2]
        request = urllib.request.Request(
            f"http://{HOST}:{PORT}/api/v1/activation/sync",
            data=json.dumps({"fingerprint": fingerprint, "version": "bench", "usage": {}}).encode(),
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            etag, document = reply.headers["ETag"], json.loads(reply.read())["license"]
        # One application the server holds, for the scenario whose usage moves.
        claims = json.loads(base64.urlsafe_b64decode(document.split(".")[1] + "=="))
        product = claims["entitlements"][0]["product"] if claims["entitlements"] else ""
        return f"{credential}\t{fingerprint}\t{etag}\t{product}\n"

    log(f"{tier}: fetching the current document of {len(lines)} servers")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        out.write_text("".join(pool.map(one, lines)))
    out.chmod(0o600)
    return out


def session_cookie() -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://{HOST}:{PORT}/login/").read().decode()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if found is None:
        sys.exit("bench: the login page has no CSRF token")
    token = found.group(1)
    form = urllib.parse.urlencode(
        {
            "username": "bench@example.com",
            "password": "bench-password-123",
            "csrfmiddlewaretoken": token,
        }
    ).encode()
    opener.open(
        urllib.request.Request(
            f"http://{HOST}:{PORT}/login/",
            data=form,
            headers={"Referer": f"http://{HOST}:{PORT}/login/"},
        )
    )
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        sys.exit("could not log in as bench@example.com")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def drain() -> None:
    """Wait until the portal has worked off what the last run left queued (wrk stops sending,
    the workers still answer what they accepted): a quick /healthz means a free worker."""
    deadline = time.time() + 180
    while time.time() < deadline:
        started = time.perf_counter()
        fetch("/healthz", {})
        if time.perf_counter() - started < 0.05:
            return
        time.sleep(0.2)


def fetch(path: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(f"http://{HOST}:{PORT}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=120) as reply:
        return str(reply.read().decode())


def with_query(path: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def last_page(path: str, headers: dict[str, str], *, api: bool) -> str:
    """The URL of a list's last page, found as a person or a client would: the page count the
    first page states, or else by following its "next" links."""
    hops = 0
    while hops < 5000:
        body = fetch(path, headers)
        if api:
            data = json.loads(body)
            results, count = data.get("results") or [], data.get("count")
            if hops == 0 and count and results and len(results) < count:
                pages = math.ceil(count / len(results))
                if "page=" not in (data.get("next") or "page="):
                    pass  # not numbered pages: walk the links
                else:
                    return with_query(path, page=str(pages))
            following = data.get("next")
            if not following:
                return path
            parts = urllib.parse.urlsplit(following)
            path = urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        else:
            stated = re.search(r"Page\s+\d+\s+of\s+(\d+)", body)
            if hops == 0 and stated:
                pages = int(stated.group(1))
                return with_query(path, page=str(pages)) if pages > 1 else path
            following = re.search(r'<a href="([^"]+)"[^>]*>\s*Next', body)
            if not following:
                return path
            target = following.group(1).replace("&amp;", "&")
            base = urllib.parse.urlsplit(path).path
            path = urllib.parse.urljoin(base, target)
        hops += 1
    return path


def digest_bytes(mail_dir: Path, partner_email: str) -> int | None:
    """The largest message to the partner in the mail the jobs wrote (its digest)."""
    largest = None
    for file in mail_dir.glob("*"):
        for message in file.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            headers = message.split(b"\n\n", 1)[0].decode("utf-8", "replace")
            if re.search(rf"^To:.*{re.escape(partner_email)}", headers, re.MULTILINE | re.I):
                largest = max(largest or 0, len(message))
    return largest


def run_jobs(db_url: str, label: str) -> dict[str, Any]:
    mail_dir = Path(tempfile.mkdtemp(prefix="bench-mail-", dir=VAR))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.jobs"],
        cwd=ROOT,
        env=app_env(db_url, EMAIL_FILE_PATH=str(mail_dir)),
        stdout=subprocess.PIPE,
        text=True,
    )
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"run_daily_jobs failed ({label})")
    report = json.loads(output.strip().splitlines()[-1])
    result = {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "queries": report["queries"],
        "output": report["output"],
        "digest_bytes": digest_bytes(mail_dir, "bench@example.com"),
    }
    shutil.rmtree(mail_dir)
    log(
        f"jobs ({label}): {result['seconds']} s, peak RSS {result['peak_rss_mb']} MB, "
        f"{result['queries']} queries; {result['output']}"
    )
    return result


def _table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
    return bool(row and row[0])


def make_work_due(db_url: str) -> None:
    """Work for the daily jobs, set again before each measured run: 1 server in 50 silent for
    four days (stale), the subscriptions of 1 customer in 100 at their term's end (renewed) and
    of another 1 in 100 without auto-renewal (expired), and the digests not yet sent today."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        # What was told already (per-item reminders, and each partner's and customer's
        # watermark per threshold): every measured run is a first day.
        for table in ("lifecycle_reminder", "lifecycle_toldthrough"):
            if _table_exists(conn, table):
                conn.execute(f'DELETE FROM "{table}"')
        for table in ("lifecycle_digest", "lifecycle_expirynotice"):
            if _table_exists(conn, table):
                conn.execute(f'DELETE FROM "{table}"')
        conn.execute(
            "UPDATE tokens_server SET state = 'active', last_sync_at = now() - interval '4 days'"
            " WHERE name LIKE 'srv-____0-0' AND state IN ('active', 'stale')"
        )
        for suffix, auto_renew in (("00", True), ("50", False)):
            conn.execute(
                "UPDATE smartaccounts_license l SET state = 'active',"
                " ends_at = now() - interval '1 hour', auto_renew = %s"
                " FROM smartaccounts_smartaccount a WHERE a.id = l.account_id"
                " AND l.kind = 'subscription' AND a.name LIKE %s",
                [auto_renew, f"Bench Customer ___{suffix}"],
            )


def tier_scenarios(
    tier: str, db_url: str, fleet: dict[str, Any], sync_file: Path, cookie: str
) -> list[Scenario]:
    base, floor = f"http://{HOST}:{PORT}", f"http://{HOST}:{FLOOR_PORT}"
    tables = Tables(db_url)
    pool = len(sync_file.read_text().splitlines())

    def sync_run(mode: str, age: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            set_sync_times(db_url, age)
            before = tables.snapshot()
            result = wrk(
                f"{base}/api/v1/activation/sync",
                seconds=SECONDS,
                script="sync.lua",
                args=(str(sync_file), mode),
            )
            time.sleep(STATS_WAIT)
            delta = Tables.delta(before, tables.snapshot())
            syncs = sum(n for s, n in result["statuses"].items() if s in ("200", "304"))
            result["table_writes"] = delta
            result["writes_per_sync"] = round(sum(delta.values()) / max(1, syncs), 3)
            return result

        return run

    def get(
        path: str, headers: dict[str, str], seconds: float = PAGE_SECONDS
    ) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            # One request alone, the better of two: what a person waits on an idle server.
            alone = []
            for _ in range(2):
                started = time.perf_counter()
                fetch(path, headers)
                alone.append(time.perf_counter() - started)
            drain()
            result = wrk(f"{base}{path}", seconds=seconds, script="get.lua", headers=headers)
            return {"alone_ms": round(min(alone) * 1000, 1), **result}

        return run

    scenarios = [
        Scenario(
            "floor",
            "floor: bare Django, `SELECT 1`",
            lambda: wrk(f"{floor}/floor", seconds=SECONDS, script="get.lua"),
        ),
        Scenario("healthz", "`/healthz`", get("/healthz", {}, SECONDS)),
        Scenario(
            "sync_steady",
            f"sync, steady state (ETag current, {pool:,} servers)",
            sync_run("loop", "1 minute"),
            warm=lambda: wrk(
                f"{base}/api/v1/activation/sync",
                seconds=2,
                script="sync.lua",
                args=(str(sync_file), "loop"),
            ),
        ),
        Scenario(
            "sync_usage",
            f"sync, usage moving by 1 on every sync (ETag current, {pool:,} servers)",
            sync_run("usage", "1 minute"),
            warm=lambda: wrk(
                f"{base}/api/v1/activation/sync",
                seconds=2,
                script="sync.lua",
                args=(str(sync_file), "loop"),
            ),
        ),
        Scenario(
            "sync_hourly",
            f"sync, hourly cadence (last sync 1 h ago, each of {pool:,} servers once)",
            sync_run("once", "1 hour"),
            warm=lambda: None,  # sync_steady warmed the path; a warm-up would spend the hour
        ),
    ]
    user = {"Cookie": cookie}
    api = {"Authorization": f"Bearer {fleet['api_key']}", "Accept": "application/json"}
    big = fleet["big_account"]
    lists = [
        ("picker", "customer picker (reseller)", "/customers/", user, False),
        ("history", "history, biggest account", f"/accounts/{big}/history/", user, False),
        ("orders_api", "orders API (reseller)", "/api/v1/orders", api, True),
        ("renewals", "renewals dashboard (reseller)", "/renewals/", user, False),
        ("licenses_page", "licenses page, biggest account", f"/accounts/{big}/", user, False),
        (
            "licenses_api",
            "licenses API, biggest account",
            f"/api/v1/accounts/{big}/licenses",
            api,
            True,
        ),
    ]
    for name, label, path, headers, is_api in lists:
        last = last_page(path, headers, api=is_api)
        log(f"{tier}: {name}: last page {last}")
        scenarios.append(Scenario(f"{name}_first", f"{label}, page 1", get(path, headers)))
        if last != path:
            scenarios.append(Scenario(f"{name}_last", f"{label}, last page", get(last, headers)))
    return scenarios


def run_tier(tier: str) -> dict[str, Any]:
    db_url = bench_database_url(tier)
    fleet = build_fleet(tier, db_url)
    log(f"{tier}: {fleet['customers']:,} customers, {fleet['servers']:,} activated servers")
    if "--build-only" in sys.argv:
        return {}
    portal = start_gunicorn("licensing_portal.wsgi:application", PORT, db_url, "/healthz")
    floor = start_gunicorn("bench.floor:application", FLOOR_PORT, db_url, "/floor")
    try:
        sync_file = collect_etags(fleet, tier)
        scenarios = tier_scenarios(tier, db_url, fleet, sync_file, session_cookie())
        if ONLY:
            scenarios = [s for s in scenarios if s.name == "floor" or s.name in ONLY]
        for round_number in range(REPEATS):
            for scenario in scenarios:
                drain()
                if round_number == 0:
                    (scenario.warm or scenario.run)()  # warm-up, not counted
                    drain()
                result = scenario.run()
                scenario.runs.append(result)
                log(
                    f"{tier} round {round_number + 1}/{REPEATS} {scenario.name}: "
                    f"{result['rps']} req/s, p99 {result['p99_ms']} ms, errors {result['errors']}"
                    + (
                        f", {result['writes_per_sync']} writes/sync"
                        if "writes_per_sync" in result
                        else ""
                    )
                )
        memory = worker_memory_mb(portal)
    finally:
        stop(portal)
        stop(floor)
    if ONLY:
        floor_rps = scenarios[0].summary()["rps_median"]
        for scenario in scenarios:
            summary = scenario.summary()
            log(
                f"{tier} {scenario.name}: median {summary['rps_median']} req/s "
                f"({summary['rps_median'] / floor_rps:.2f}x the floor), "
                f"p99 {summary['p99_ms_median']} ms"
            )
        return {}
    make_work_due(db_url)
    jobs_due = run_jobs(db_url, "work due")
    jobs_idle = run_jobs(db_url, "nothing to do")
    results = {s.name: s.summary() for s in scenarios}
    hourly = results["sync_hourly"]["rps_median"]
    return {
        "fleet": {k: fleet[k] for k in ("customers", "servers")} | {"sync_pool": SYNC_POOL},
        "scenarios": results,
        "worker_memory_mb": memory,
        "jobs": {"work_due": jobs_due, "nothing_to_do": jobs_idle},
        "digest_bytes": jobs_due["digest_bytes"],
        "ratios": round_ratios(results),
        # Half the box for syncs, the rest headroom: servers syncing once an hour.
        "capacity_servers_hourly": int(0.5 * hourly * 3600),
    }


# Each ratio is taken within one round (the two runs a minute apart), then the median and the
# spread over the rounds: a box whose speed drifts between rounds moves both sides alike.
RATIOS = {
    "healthz_over_floor": ("healthz", "floor", "`/healthz`"),
    "sync_steady_over_floor": ("sync_steady", "floor", "sync, steady"),
    "sync_hourly_over_floor": ("sync_hourly", "floor", "sync, hourly"),
    "sync_hourly_over_steady": ("sync_hourly", "sync_steady", "hourly over steady"),
}


def round_ratios(scenarios: dict[str, Any]) -> dict[str, dict[str, float]]:
    ratios = {}
    for name, (top, bottom, _) in RATIOS.items():
        pairs = zip(scenarios[top]["runs"], scenarios[bottom]["runs"], strict=True)
        each = [a["rps"] / b["rps"] for a, b in pairs if b["rps"]]
        ratios[name] = {
            "median": round(statistics.median(each), 3),
            "min": round(min(each), 3),
            "max": round(max(each), 3),
        }
    return ratios


# --- Output --------------------------------------------------------------------------------------


def markdown(tier: str, data: dict[str, Any]) -> str:
    rows = [
        f"**{tier} tier** ({data['fleet']['customers']:,} customers, "
        f"{data['fleet']['servers']:,} servers)",
        "",
        "| scenario | req/s median (min–max) | p99 | errors | writes/sync | one request alone |",
        "|---|---|---|---|---|---|",
    ]
    for s in data["scenarios"].values():
        writes, alone, p99 = (
            s.get("writes_per_sync_median"),
            s.get("alone_ms_median"),
            s["p99_ms_median"],
        )
        rows.append(
            f"| {s['label']} | {s['rps_median']:,.1f} ({s['rps_min']:,.1f}–{s['rps_max']:,.1f})"
            f" | {'none back in time' if p99 is None else f'{p99:,.0f} ms'} | {s['errors']} | "
            f"{'' if writes is None else writes} | {'' if alone is None else f'{alone:,.0f} ms'} |"
        )
    ratios = round_ratios(data["scenarios"])
    rows += [
        "",
        "Within each round, against the run beside it (median over the rounds, min–max): "
        + "; ".join(
            f"{label} {ratios[name]['median']:.2f}× ({ratios[name]['min']:.2f}–"
            f"{ratios[name]['max']:.2f})" + (" of the floor" if bottom == "floor" else "")
            for name, (_, bottom, label) in RATIOS.items()
        )
        + ".",
    ]
    due, idle = data["jobs"]["work_due"], data["jobs"]["nothing_to_do"]
    rows += [
        "",
        "| daily jobs | wall time | peak RSS | queries | did |",
        "|---|---|---|---|---|",
        f"| work due | {due['seconds']} s | {due['peak_rss_mb']} MB | {due['queries']:,} "
        f"| {due['output']} |",
        f"| nothing to do | {idle['seconds']} s | {idle['peak_rss_mb']} MB | "
        f"{idle['queries']:,} | {idle['output']} |",
        "",
        f"Largest digest e-mail: {data['digest_bytes'] or 0:,} bytes. Portal workers: "
        f"{', '.join(str(m) for m in data['worker_memory_mb'])} MB. Capacity: one 2-core box "
        f"carries about **{data['capacity_servers_hourly']:,} servers** syncing hourly with "
        f"half of it spare (0.5 × {data['scenarios']['sync_hourly']['rps_median']:,.0f} "
        "hourly syncs/s × 3600).",
    ]
    return "\n".join(rows)


def machine_note(machine: dict[str, Any]) -> str:
    load = " / ".join(str(x) for x in machine.get("load_average_at_start", []))
    return (
        f"{machine['cpus']} CPUs, Python {machine['python']}, {machine['gunicorn']}, "
        f"wrk {machine['wrk']}, {machine['repeats']} runs a scenario "
        f"({machine['seconds']['sync']:.0f} s sync, {machine['seconds']['pages']:.0f} s pages); "
        f"load average at the start {load}"
    )


def main() -> None:
    if "--table" in sys.argv:  # the last results, as docs/benchmarks.md's markdown
        results = json.loads(RESULTS_FILE.read_text())
        print(f"{results['machine']['date']}; {machine_note(results['machine'])}\n")
        for tier, data in results["tiers"].items():
            print(markdown(tier, data) + "\n")
        return
    # Stopped from outside, still stop the gunicorns it started (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench stopped"))
    if WRK is None:
        sys.exit("make bench drives load with wrk: install it (Debian: apt-get install wrk)")
    VAR.mkdir(exist_ok=True)
    tiers = [t.strip() for t in os.environ.get("BENCH_TIER", "small,large").split(",") if t]
    if set(tiers) - {"small", "medium", "large"}:
        sys.exit("BENCH_TIER is small, medium or large, or several comma-separated")
    results = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    results.setdefault("tiers", {})
    results["machine"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gunicorn": f"{WORKERS} {WORKER_CLASS} workers x {THREADS} threads",
        "wrk": f"{WRK_THREADS} threads, {CONNECTIONS} connections",
        "seconds": {"sync": SECONDS, "pages": PAGE_SECONDS},
        "repeats": REPEATS,
        # Whatever else runs on the box shares its cores; the floor in every round shows it.
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
    }
    for tier in tiers:
        data = run_tier(tier)
        if not data:
            continue
        results["tiers"][tier] = data
        RESULTS_FILE.write_text(json.dumps(results, indent=2))
        print()
        print(markdown(tier, data))
        print()
    if "--build-only" not in sys.argv and not ONLY:
        log(f"results written to {RESULTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
