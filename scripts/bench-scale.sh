#!/usr/bin/env bash
# Scale curve (issue 13): how one telemetry run's wall time grows with the
# source cluster's size — documents (1e5, 1e6, 1e7 at 20 services) and
# services (10, 100, 1,000 at 1e6 documents) — serial (Kibana's way: one
# task, one request at a time) against distributed (W workers, cap C), with
# the source cluster's own time (the proxy's upstream time, summed over the
# run's requests, and its slowest request). No delay is injected: here the
# engine's work is what grows. Measured once by hand, not in CI: loading 1e7
# documents takes about 20 minutes on 2 cores.
#
# Starts its own services (own APMTEL_STATE_DIR), writes its section into
# docs/benchmarks.md between the bench-scale markers.
# Usage: scripts/bench-scale.sh   (DOC_STEPS="100000 1000000 10000000" SERVICE_STEPS="10 100 1000" W=4 C=16)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export DOC_STEPS=${DOC_STEPS:-"100000 1000000 10000000"} SERVICE_STEPS=${SERVICE_STEPS:-"10 100 1000"}
export SERVICE_DOCS=${SERVICE_DOCS:-1000000} W=${W:-4} C=${C:-16}
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/bench-scale}
APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start # OpenSearch alone: Elasticsearch is for the tests
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
. "$APMTEL_STATE_DIR/env"
go build -o "$APMTEL_STATE_DIR/apmtel" ./cmd/apmtel
export APMTEL_BIN=$APMTEL_STATE_DIR/apmtel

python3 - <<'PY'
import json, os, re, subprocess, sys, time, urllib.request

env0 = dict(os.environ)
proxy, engine = env0["APMTEL_TEST_ES_URL"], env0["APMTEL_TEST_OPENSEARCH_URL"]
state, apmtel = env0["APMTEL_STATE_DIR"], env0["APMTEL_BIN"]
W, C = int(env0["W"]), int(env0["C"])
base = {k: v for k, v in env0.items() if not k.startswith("APMTEL_")}
base.update({"APMTEL_SOURCE_URL": proxy, "APMTEL_REDIS_ADDR": env0["APMTEL_TEST_REDIS_ADDR"], "APMTEL_REDIS_DB": "6",
             "APMTEL_POLL_INTERVAL": "100ms", "APMTEL_LOG_LEVEL": "warn", "APMTEL_DATA_DIR": state + "/data",
             "APMTEL_SEARCH_CONCURRENCY": str(C), "APMTEL_SEARCH_TIMEOUT": "5m", "APMTEL_TASK_TIMEOUT": "20m"})

def http(url, method="GET", body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        b = r.read()
        return json.loads(b) if b.strip() else {}

ctl = lambda path, body=None: http(proxy + "/__proxy/" + path, "GET" if body is None else "POST", body)

def load(n, services, seed):
    t0 = time.monotonic()
    p = subprocess.run([apmtel, "sample", "apm", "--docs", str(n), "--services", str(services), "--days", "7",
                        "--seed", str(seed)], env=base, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-2000:]); raise SystemExit("sample apm failed")
    print("bench-scale: " + p.stderr.strip().splitlines()[-1], file=sys.stderr)
    return time.monotonic() - t0

def count():
    return http(engine + "/traces-apm*,logs-apm*,metrics-apm*/_count")["count"]

def timed(args, **extra):
    ctl("reset-stats", {})
    t0 = time.monotonic()
    p = subprocess.run([apmtel, *args], env=dict(base, **extra), capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode not in (0, 1):
        sys.stderr.write(p.stderr[-2000:]); raise SystemExit(f"apmtel {' '.join(args)}: exit {p.returncode}")
    st = ctl("stats")
    return wall, st

def measure(label):
    timed(["preview", "--parallel", "19"])  # warm this data set's caches and the JIT
    s_wall, s_st = timed(["preview", "--parallel", "1"], APMTEL_SEARCH_CONCURRENCY="1")
    d_wall, d_st = timed(["run", "--wait", "--json", "--poll", "5ms", "--timeout", "30m"])
    row = (label, s_wall, s_st["upstream_ms"] / 1000, s_st["max_upstream_ms"] / 1000, d_wall,
           d_st["upstream_ms"] / 1000, d_st["requests"])
    print("bench-scale: %s serial %.2f s (engine %.2f s, slowest %.2f s), distributed %.2f s (engine %.2f s over %d requests)"
          % row, file=sys.stderr)
    return row

procs = []
rows_docs, rows_svc = [], []
try:
    for i in range(W):
        procs.append(subprocess.Popen([apmtel, "worker"], env=dict(base, APMTEL_CONCURRENCY="5"),
                                      stdout=open(f"{state}/worker-{i}.log", "w"), stderr=subprocess.STDOUT))
    time.sleep(1.5)
    # 1,000 services are 1,000 metrics-apm.app.<service> data streams: past
    # the default of 1,000 shards per node (Elasticsearch's too).
    http(engine + "/_cluster/settings", "PUT", {"persistent": {"cluster.max_shards_per_node": 5000}})
    loaded = 0
    for seed, target in enumerate(int(x) for x in env0["DOC_STEPS"].split()):
        load(target - loaded, 20, seed + 1)
        loaded = target
        rows_docs.append(measure(f"{count():,} docs, 20 services"))
    for n in (int(x) for x in env0["SERVICE_STEPS"].split()):
        http(engine + "/_data_stream/*", "DELETE")
        load(int(env0["SERVICE_DOCS"]), n, 100 + n)
        rows_svc.append(measure(f"{count():,} docs, {n} services"))
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()

def table(rows):
    out = ["| data | serial | engine time, serial run (sum / slowest request) | distributed (%d workers, cap %d) "
           "| engine time, distributed run (sum) | requests | serial / distributed |" % (W, C), "|" + "---|" * 7]
    for label, s, se, smax, d, de, req in rows:
        out.append(f"| {label} | {s:.2f} s | {se:.2f} s / {smax:.2f} s | {d:.2f} s | {de:.2f} s | {req} | {s / d:.1f}× |")
    return "\n".join(out)

section = f"""<!-- bench-scale:start -->
## Scale curve (`scripts/bench-scale.sh`)

Measured once on {time.strftime('%Y-%m-%d', time.gmtime())} (2 cores shared by the engine, Redis, {W} workers and
the benchmark; no injected delay). Serial is `APMTEL_SEARCH_CONCURRENCY=1 apmtel preview --parallel 1`,
distributed is `apmtel run --wait` with {W} workers and cap {C}; each after one warming in-process run of
the same data. "Engine time" is what the source cluster took to answer (the proxy's upstream time summed
over the run's requests): in the distributed run the requests overlap, so their sum exceeds the wall time.

Documents (20 services, 7 days):

{table(rows_docs)}

Services ({int(env0["SERVICE_DOCS"]):,} documents, 7 days):

{table(rows_svc)}
<!-- bench-scale:end -->"""
print(section)
path = "docs/benchmarks.md"
doc = open(path).read()
if "<!-- bench-scale:start -->" in doc:
    doc = re.sub(r"<!-- bench-scale:start -->.*?<!-- bench-scale:end -->", lambda m: section, doc, flags=re.S)
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(doc)
print("written docs/benchmarks.md", file=sys.stderr)
PY
