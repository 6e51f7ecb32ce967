#!/usr/bin/env bash
# Run benchmark: how long one telemetry run takes when every request to the
# source cluster costs a fixed delay (a remote cluster), done
#   serial         Kibana's way: one task, one request at a time
#                  (APMTEL_SEARCH_CONCURRENCY=1 apmtel preview --parallel 1)
#   in-process     every task at once in one process, requests concurrent
#                  inside tasks, capped at C (apmtel preview --parallel P)
#   in-process + envelope   the same, and the source identity the upload
#                  needs (apmtel preview --envelope --parallel P)
#   distributed    W `apmtel worker` processes, cluster-wide cap C (`apmtel run
#                  --wait`, timed from the command's start to the upload's end)
# for each delay, plus the distributed run's breakdown (where its wall time
# went, from the run's own record: run.BreakdownOf), the queue overhead
# (BenchmarkQueueOverhead) and the run overhead (last task recorded → upload
# done). Prints the tables and writes them into docs/benchmarks.md (between
# markers).
#
# Services: by default it starts its own (scripts/services.sh, own
# APMTEL_STATE_DIR). BENCH_SOURCE_URL=URL uses an existing engine instead (no
# second OpenSearch on a small machine): the script then starts only a Redis
# and a delay proxy of its own in front of URL, and keeps its sample data
# apart under index prefix PREFIX (default bench-run-), deleted at the end.
#
# Usage: scripts/bench-run.sh            (DOCS=100000 W=4 WC=6 C=16 P=21 DELAYS="0 50 200" REPEAT=3)
#        QUEUE_JOBS=1000 jobs for the queue overhead (0 skips it); WARM=3 warming runs;
#        BENCH_OUT=FILE writes there instead of docs/benchmarks.md (the suite's smoke run, systemtest/bench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export DOCS=${DOCS:-100000} W=${W:-4} WC=${WC:-6} C=${C:-16} P=${P:-21} DELAYS=${DELAYS:-"0 50 200"} REPEAT=${REPEAT:-3}
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/bench-run}
mkdir -p "$APMTEL_STATE_DIR"
if [ -n "${BENCH_SOURCE_URL:-}" ]; then
  export PREFIX=${PREFIX:-bench-run-}
  S=$APMTEL_STATE_DIR
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
  rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --databases 16 \
    --daemonize yes --pidfile "$S/redis.pid" --dir "$S" --logfile "$S/redis.log"
  go build -o "$S/esproxy" ./tools/esproxy
  rm -f "$S/esproxy.addr"
  "$S/esproxy" -listen 127.0.0.1:0 -target "$BENCH_SOURCE_URL" -addr-file "$S/esproxy.addr" >"$S/esproxy.log" 2>&1 &
  echo $! >"$S/esproxy.pid"
  for _ in $(seq 100); do [ -s "$S/esproxy.addr" ] && redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  cleanup() {
    curl -s -X DELETE "$BENCH_SOURCE_URL/_data_stream/${PREFIX}*" >/dev/null || true
    curl -s -X DELETE "$BENCH_SOURCE_URL/${PREFIX}*,${PREFIX}.*?ignore_unavailable=true&expand_wildcards=all" >/dev/null || true
    curl -s -X DELETE "$BENCH_SOURCE_URL/_index_template/${PREFIX}*" >/dev/null || true
    kill "$(cat "$S/esproxy.pid")" 2>/dev/null || true
    redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  }
  trap cleanup EXIT
  export APMTEL_TEST_REDIS_ADDR=127.0.0.1:$rport APMTEL_TEST_OPENSEARCH_URL=$BENCH_SOURCE_URL
  APMTEL_TEST_ES_URL=http://$(cat "$S/esproxy.addr")
  export APMTEL_TEST_ES_URL
else
  export PREFIX=""
  APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start # OpenSearch alone: Elasticsearch is for the tests
  trap 'scripts/services.sh stop' EXIT
  # shellcheck disable=SC1091
  . "$APMTEL_STATE_DIR/env"
fi
go build -o "$APMTEL_STATE_DIR/apmtel" ./cmd/apmtel
export APMTEL_BIN=$APMTEL_STATE_DIR/apmtel
if [ -n "$PREFIX" ]; then
  export APMTEL_INDICES_TRANSACTION="${PREFIX}traces-apm*,${PREFIX}apm-*" APMTEL_INDICES_SPAN="${PREFIX}traces-apm*,${PREFIX}apm-*"
  export APMTEL_INDICES_ERROR="${PREFIX}logs-apm*,${PREFIX}apm-*" APMTEL_INDICES_METRIC="${PREFIX}metrics-apm*,${PREFIX}apm-*"
  export APMTEL_INDICES_ONBOARDING="${PREFIX}apm-*" APMTEL_INDICES_AGENT_CONFIGURATION="${PREFIX}.apm-agent-configuration"
  export APMTEL_INDICES_KIBANA="${PREFIX}.kibana*"
fi

echo "bench-run: loading $DOCS sample documents${PREFIX:+ under prefix $PREFIX}" >&2
APMTEL_SOURCE_URL=$APMTEL_TEST_ES_URL "$APMTEL_BIN" sample apm --docs "$DOCS" --services 20 --days 7 --seed 42 --prefix "$PREFIX" 2>&1 | tail -1 >&2

queue=""
if [ "${QUEUE_JOBS:-1000}" != 0 ]; then
  echo "bench-run: queue overhead (${QUEUE_JOBS:-1000} jobs)" >&2
  queue=$(go test -count=1 -run '^$' -bench QueueOverhead -benchtime "${QUEUE_JOBS:-1000}x" ./systemtest | grep '^BenchmarkQueueOverhead' || true)
fi
export QUEUE_LINE=$queue

python3 - <<'PY'
import json, math, os, subprocess, sys, time, urllib.request
from datetime import datetime

env0 = dict(os.environ)
proxy = env0["APMTEL_TEST_ES_URL"]
state, apmtel = env0["APMTEL_STATE_DIR"], env0["APMTEL_BIN"]
W, C, P, docs, R = int(env0["W"]), int(env0["C"]), int(env0["P"]), int(env0["DOCS"]), int(env0["REPEAT"])
cores = os.cpu_count() or 1
WC = env0["WC"]
delays = [int(d) for d in env0["DELAYS"].split()]
prefix = env0.get("PREFIX", "")
DB = "5"
# The index settings (a prefixed data set) pass through; nothing else of the caller's APMTEL_*.
base = {k: v for k, v in env0.items() if not k.startswith("APMTEL_") or k.startswith("APMTEL_INDICES_")}
base.update({"APMTEL_SOURCE_URL": proxy, "APMTEL_REDIS_ADDR": env0["APMTEL_TEST_REDIS_ADDR"], "APMTEL_REDIS_DB": DB,
             "APMTEL_POLL_INTERVAL": "100ms", "APMTEL_LOG_LEVEL": "warn", "APMTEL_DATA_DIR": state + "/data",
             "APMTEL_SEARCH_CONCURRENCY": str(C)})

def ctl(path, body=None):
    req = urllib.request.Request(proxy + "/__proxy/" + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        b = r.read()
        return json.loads(b) if b.strip() else {}

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
    return wall, stats, ts(up["at"]) - last if up.get("at") else float("nan"), bad, rec

procs = []
try:
    for i in range(W):
        procs.append(subprocess.Popen([apmtel, "worker"], env=dict(base, APMTEL_CONCURRENCY=WC),
                                      stdout=open(f"{state}/worker-{i}.log", "w"), stderr=subprocess.STDOUT))
    time.sleep(1.5)
    ctl("fault", {"mode": "none"})
    # A fresh node answers its first hundreds of searches several times slower
    # (JIT, caches): warm it with whole runs before measuring anything.
    for _ in range(int(env0.get("WARM", "3"))):
        timed(["preview", "--parallel", str(P)])
        distributed()
    rows, breakdowns = [], []
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for d in delays:
        ctl("fault", {"mode": "delay", "delay_ms": d} if d else {"mode": "none"})
        print(f"bench-run: delay {d} ms ({R} runs each, median)", file=sys.stderr)
        S, I, E, D = [], [], [], []
        for _ in range(R):
            S.append(timed(["preview", "--parallel", "1"], APMTEL_SEARCH_CONCURRENCY="1"))
            I.append(timed(["preview", "--parallel", str(P)]))
            E.append(timed(["preview", "--envelope", "--parallel", str(P)]))
            D.append(distributed())
        s_wall, i_wall, e_wall, d_wall = (med([x[0] for x in X]) for X in (S, I, E, D))
        over, bad = med([x[2] for x in D]), sorted({b for x in D for b in x[3]})
        # The breakdown of the distributed run whose wall time is the median.
        mid = sorted(D, key=lambda x: x[0])[len(D) // 2]
        breakdowns.append((d, mid[0], mid[4]))
        req = {k: med([x[1]["requests"] for x in X]) for k, X in (("s", S), ("i", I), ("e", E), ("d", D))}
        lb = math.ceil(req["d"] / C) * d / 1000
        # The engine's own time for one run's requests, one at a time (the
        # serial run's upstream time at the proxy); on `cores` cores it cannot
        # take less than that / cores however the requests overlap.
        eng = med([x[1]["upstream_ms"] for x in S]) / 1000
        mif = "/".join(str(max(x[1]["max_in_flight"] for x in X)) for X in (S, I, E, D))
        rows.append((d, s_wall, i_wall, e_wall, d_wall, req, mif, lb, eng, over, bad))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()

hdr = ("| delay | serial | in-process (P=%d, cap %d) | in-process + envelope | distributed (%d workers × %s, cap %d, upload incl.) "
       "| serial / distributed | distributed / in-process + envelope | requests (serial / in-process / + envelope / distributed) "
       "| max in flight at the source | lower bound ⌈req/cap⌉×delay | engine time E (serial run) | run overhead (last task → upload done) |"
       % (P, C, W, WC, C))
out = [hdr, "|" + "---|" * 12]
for d, s, i, e, dw, req, mif, lb, eng, over, bad in rows:
    out.append(f"| {d} ms | {s:.2f} s | {i:.2f} s | {e:.2f} s | {dw:.2f} s | {s / dw:.1f}× | {dw / e:.2f}× | "
               f"{req['s']} / {req['i']} / {req['e']} / {req['d']} | {mif} | {lb:.2f} s | {eng:.2f} s | {over*1000:.0f} ms |"
               + (f" failed: {bad}" if bad else ""))
table = "\n".join(out)

def fmt_ms(v):
    return f"{v} ms" if v < 10000 else f"{v/1000:.1f} s"

bd_out = []
for d, wall, rec in breakdowns:
    b = rec.get("breakdown") or {}
    steps = b.get("steps") or []
    wms = b.get("wall_ms") or 0
    bd_out.append(f"**{d} ms per request** — run `{rec['run']['id']}`, {wall:.2f} s from the command's start, "
                  f"{wms} ms from the run's creation to the upload's end; critical path through `{b.get('critical', '?')}`:\n")
    bd_out.append("| step | time | share |")
    bd_out.append("|---|---|---|")
    for st in steps:
        bd_out.append(f"| {st['name']} | {st['ms']} ms | {100 * st['ms'] / wms if wms else 0:.0f} % |")
    for e in b.get("errands") or []:
        bd_out.append(f"\nErrand `{e['name']}`: {e['status']}, took {e.get('took_ms', 0)} ms, {e.get('requests', 0)} requests, "
                      f"slot wait {e.get('slot_wait_ms', 0)} ms in all (longest {e.get('slot_wait_max_ms', 0)} ms).")
    # The requests' time at the source summed over the run, spread over the
    # cap's C slots: the least the cap allows with these answer times.
    held = sum(t.get("request_ms", 0) for t in b.get("tasks") or []) + sum(e.get("request_ms", 0) for e in b.get("errands") or [])
    nreq = sum(t.get("requests", 0) for t in b.get("tasks") or []) + sum(e.get("requests", 0) for e in b.get("errands") or [])
    if nreq:
        bd_out.append(f"\nRequests held a slot {held / 1000:.1f} s in all ({nreq} requests, {held / nreq:.0f} ms each on average, "
                      f"the delay included): spread over the {C} slots of the cap, at least {held / C / 1000:.2f} s of the run.")
    shares = sorted(b.get("tasks") or [], key=lambda t: -t["end_ms"])
    bd_out.append("\n| task (latest finish first) | start | end | job slot wait | pickup | took | requests | slot wait total / longest | request time (sum) | cap only | at the source |")
    bd_out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in shares[:6]:
        bd_out.append(f"| {t['task']} | +{t['start_ms']} ms | +{t['end_ms']} ms | {t['job_slot_ms']} ms | {t['pickup_ms']} ms | {t['took_ms']} ms | "
                      f"{t.get('requests', 0)} | {t.get('slot_wait_ms', 0)} / {t.get('slot_wait_max_ms', 0)} ms | {fmt_ms(t.get('request_ms', 0))} | "
                      f"{t.get('cap_only_ms', 0)} ms | {t.get('at_source_ms', 0)} ms |")
    bd_out.append("")
bd = "\n".join(bd_out)
q = os.environ.get("QUEUE_LINE", "")
try:
    load = open("/proc/loadavg").read().split()[:3]
except OSError:
    load = ["?"] * 3
section = f"""<!-- bench-run:start -->
## Run benchmark (`scripts/bench-run.sh`)

Measured on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC with DOCS={docs} sample documents{f' (index prefix {prefix!r} on an existing engine)' if prefix else ''},
W={W} workers (`APMTEL_CONCURRENCY={WC}` each), cap C={C} (`APMTEL_SEARCH_CONCURRENCY`), `APMTEL_POLL_INTERVAL=100ms`;
the test proxy (tools/esproxy) adds the delay to every request. Each figure is the **median of {R} runs**, after
{env0.get('WARM', '3')} in-process and distributed runs warmed the node; the engine, Redis, the workers and the
benchmark share {cores} cores (load average at the end: {' '.join(load)}).

{table}

Serial is `APMTEL_SEARCH_CONCURRENCY=1 apmtel preview --parallel 1` (one task and one request at a time,
Kibana's way); in-process is `apmtel preview --parallel {P}` (all tasks at once, requests concurrent inside
tasks, capped in-process at C); in-process + envelope adds the source identity the upload needs
(`preview --envelope`); distributed is timed from the start of `apmtel run --wait` to its exit at the upload's
end (`--poll 5ms` rather than the default 250 ms). Requests are counted at the proxy.

### Where the distributed run's time went (the median run's own record, `run --wait --json` "breakdown")

{bd}
Queue overhead (enqueue → handler start, {os.environ.get('QUEUE_JOBS', '1000')} jobs one every 5 ms, 100 ms poll interval;
`go test -run '^$' -bench QueueOverhead -benchtime 1000x ./systemtest`):

```
{q}
```
<!-- bench-run:end -->"""
print(table)
print(bd)
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
