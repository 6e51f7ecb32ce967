#!/usr/bin/env bash
# Run benchmark (issue 13): how long one telemetry run takes when every
# request to the source cluster costs a fixed delay (a remote cluster), done
#   serial       Kibana's way: one task, one request at a time
#                (APMTEL_SEARCH_CONCURRENCY=1 apmtel preview --parallel 1)
#   in-process   every task at once in one process, requests concurrent
#                inside tasks, capped at C (apmtel preview --parallel 19)
#   distributed  W `apmtel worker` processes, cluster-wide cap C (`apmtel run`,
#                timed from the command's start to the upload's end)
# for each delay, plus the queue overhead (BenchmarkQueueOverhead) and the run
# overhead (last task recorded → upload done). Starts its own services
# (scripts/services.sh, own APMTEL_STATE_DIR), loads DOCS sample documents,
# prints the table and writes it into docs/benchmarks.md (between markers).
#
# Usage: scripts/bench-run.sh            (DOCS=100000 W=4 C=16 DELAYS="0 50 200" REPEAT=3)
#        QUEUE_JOBS=1000 jobs for the queue overhead; WARM=3 warming runs; BENCH_OUT=FILE writes there
#        instead of docs/benchmarks.md (the suite's smoke run, systemtest/bench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export DOCS=${DOCS:-100000} W=${W:-4} WC=${WC:-6} C=${C:-16} DELAYS=${DELAYS:-"0 50 200"} REPEAT=${REPEAT:-3}
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/bench-run}
APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start # OpenSearch alone: Elasticsearch is for the tests
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
. "$APMTEL_STATE_DIR/env"
go build -o "$APMTEL_STATE_DIR/apmtel" ./cmd/apmtel
export APMTEL_BIN=$APMTEL_STATE_DIR/apmtel

echo "bench-run: loading $DOCS sample documents" >&2
APMTEL_SOURCE_URL=$APMTEL_TEST_ES_URL "$APMTEL_BIN" sample apm --docs "$DOCS" --services 20 --days 7 --seed 42 2>&1 | tail -1 >&2

echo "bench-run: queue overhead (${QUEUE_JOBS:-1000} jobs)" >&2
queue=$(go test -count=1 -run '^$' -bench QueueOverhead -benchtime "${QUEUE_JOBS:-1000}x" ./systemtest | grep '^BenchmarkQueueOverhead' || true)
export QUEUE_LINE=$queue

python3 - <<'PY'
import json, math, os, subprocess, sys, time, urllib.request
from datetime import datetime

env0 = dict(os.environ)
proxy = env0["APMTEL_TEST_ES_URL"]
redis_host, redis_port = env0["APMTEL_TEST_REDIS_ADDR"].split(":")
state, apmtel = env0["APMTEL_STATE_DIR"], env0["APMTEL_BIN"]
W, C, docs, R = int(env0["W"]), int(env0["C"]), int(env0["DOCS"]), int(env0["REPEAT"])
cores = os.cpu_count() or 1
WC = env0["WC"]
delays = [int(d) for d in env0["DELAYS"].split()]
DB = "5"
base = {k: v for k, v in env0.items() if not k.startswith("APMTEL_")}
base.update({"APMTEL_SOURCE_URL": proxy, "APMTEL_REDIS_ADDR": env0["APMTEL_TEST_REDIS_ADDR"], "APMTEL_REDIS_DB": DB,
             "APMTEL_POLL_INTERVAL": "100ms", "APMTEL_LOG_LEVEL": "warn", "APMTEL_DATA_DIR": state + "/data",
             "APMTEL_SEARCH_CONCURRENCY": str(C)})

def ctl(path, body=None):
    req = urllib.request.Request(proxy + "/__proxy/" + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        b = r.read()
        return json.loads(b) if b.strip() else {}

def redis(*args):
    return subprocess.run(["redis-cli", "-h", redis_host, "-p", redis_port, "-n", DB, "--raw", *args],
                          check=True, capture_output=True, text=True).stdout

def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def timed(args, **extra):
    env = dict(base, **extra)
    ctl("reset-stats", {})
    t0 = time.monotonic()
    p = subprocess.run([apmtel, *args], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-2000:])
        raise SystemExit(f"apmtel {' '.join(args)}: exit {p.returncode}")
    return wall, ctl("stats")

def distributed():
    # `run --wait --json` follows the run through apmtel's own store (no raw
    # keys here); --poll 5ms keeps the follow-up's granularity out of the figure.
    ctl("reset-stats", {})
    t0 = time.monotonic()
    p = subprocess.run([apmtel, "run", "--wait", "--json", "--poll", "5ms", "--timeout", "5m"], env=base,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    out = p.stdout[p.stdout.find("{"):]
    if p.returncode not in (0, 1) or not out:
        sys.stderr.write(p.stderr[-2000:])
        raise SystemExit(f"apmtel run --wait: exit {p.returncode}")
    rec = json.loads(out)
    stats = ctl("stats")
    tasks = rec["tasks"].values() if isinstance(rec["tasks"], dict) else rec["tasks"]
    bad = [t["task"] for t in tasks if t.get("status") != "ok"]
    up = rec["run"].get("upload") or {}
    if up.get("state") not in ("written", "uploaded"):
        bad.append(f"upload {up.get('state')}")
    last = max(ts(t["finished_at"]) for t in tasks)
    return wall, stats, ts(up["at"]) - last if up.get("at") else float("nan"), bad

procs = []
try:
    for i in range(W):
        procs.append(subprocess.Popen([apmtel, "worker"], env=dict(base, APMTEL_CONCURRENCY=env0["WC"]),
                                      stdout=open(f"{state}/worker-{i}.log", "w"), stderr=subprocess.STDOUT))
    time.sleep(1.5)
    ctl("fault", {"mode": "none"})
    # A fresh node answers its first hundreds of searches several times slower
    # (JIT, caches): warm it with whole runs before measuring anything.
    for _ in range(int(env0.get("WARM", "3"))):
        timed(["preview", "--parallel", "19"])
        distributed()
    rows, overheads = [], []
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for d in delays:
        ctl("fault", {"mode": "delay", "delay_ms": d} if d else {"mode": "none"})
        print(f"bench-run: delay {d} ms ({R} runs each, median)", file=sys.stderr)
        S, P, D = [], [], []
        for _ in range(R):
            S.append(timed(["preview", "--parallel", "1"], APMTEL_SEARCH_CONCURRENCY="1"))
            P.append(timed(["preview", "--parallel", "19"]))
            D.append(distributed())
        s_wall, s_st = med([x[0] for x in S]), S[0][1]
        p_wall, p_st = med([x[0] for x in P]), P[0][1]
        d_wall, d_st = med([x[0] for x in D]), D[0][1]
        over, bad = med([x[2] for x in D]), sorted({b for x in D for b in x[3]})
        overheads.append(over)
        req = d_st["requests"]
        lb = math.ceil(req / C) * d / 1000
        # E: the engine's own time for one run's requests, one at a time (the
        # serial run's upstream time at the proxy); on `cores` cores it cannot
        # take less than E/cores however the requests overlap.
        E = med([x[1]["upstream_ms"] for x in S]) / 1000
        eb = lb + E / cores
        rows.append((d, s_wall, p_wall, d_wall, s_wall / d_wall, req, max(x[1]["max_in_flight"] for x in S),
                     max(x[1]["max_in_flight"] for x in P), max(x[1]["max_in_flight"] for x in D), lb,
                     (d_wall / lb) if lb else float("nan"), over, bad, E, eb))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()

hdr = ("| delay | serial | in-process (cap %d) | distributed (%d workers, cap %d) | serial / distributed | requests "
       "| max in flight at the source (serial / in-process / distributed) | lower bound ⌈req/cap⌉×delay | distributed / lower bound "
       "| run overhead (last task → upload done) | engine time E (serial run) | bound with the engine ⌈req/cap⌉×delay + E/%d cores "
       "| distributed / that bound |" % (C, W, C, cores))
out = [hdr, "|" + "---|" * 13]
for d, s, p, dw, ratio, req, ms, mp, md, lb, vs, over, bad, E, eb in rows:
    out.append(f"| {d} ms | {s:.2f} s | {p:.2f} s | {dw:.2f} s | {ratio:.1f}× | {req} | {ms} / {mp} / {md} | "
               f"{lb:.2f} s | {'–' if lb == 0 else f'{vs:.2f}×'} | {over*1000:.0f} ms | {E:.2f} s | {eb:.2f} s | {dw / eb:.2f}× |"
               + (f" failed: {bad}" if bad else ""))
table = "\n".join(out)
q = os.environ.get("QUEUE_LINE", "")
section = f"""<!-- bench-run:start -->
## Run benchmark (`scripts/bench-run.sh`)

Measured on {time.strftime('%Y-%m-%d', time.gmtime())} with DOCS={docs} sample documents, W={W} workers
(`APMTEL_CONCURRENCY={WC}` each), cap C={C} (`APMTEL_SEARCH_CONCURRENCY`), `APMTEL_POLL_INTERVAL=100ms`; the
test proxy (tools/esproxy) adds the delay to every request. Each figure is the **median of {R} runs**, after
three in-process and three distributed runs warmed the freshly started node; the engine, Redis,
the workers and the benchmark share 2 cores.

{table}

Serial is `APMTEL_SEARCH_CONCURRENCY=1 apmtel preview --parallel 1` (one task and one request at a time,
Kibana's way); in-process is `apmtel preview --parallel 19` (all tasks at once, requests concurrent
inside tasks, capped in-process at C); distributed is timed from the start of `apmtel run --wait` to its exit at the
upload's end (`--poll 5ms` rather than the default 250 ms). The requests column counts
the distributed run's requests at the proxy.

Queue overhead (enqueue → handler start, 1,000 jobs one every 5 ms, 100 ms poll interval;
`go test -run '^$' -bench QueueOverhead -benchtime 1000x ./systemtest`):

```
{q}
```
<!-- bench-run:end -->"""
print(table)
print(q)
path = os.environ.get("BENCH_OUT") or "docs/benchmarks.md"
doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
if "<!-- bench-run:start -->" in doc:
    a, b = doc.index("<!-- bench-run:start -->"), doc.index("<!-- bench-run:end -->") + len("<!-- bench-run:end -->")
    doc = doc[:a] + section + doc[b:]
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(doc)
print("written " + path, file=sys.stderr)
PY
