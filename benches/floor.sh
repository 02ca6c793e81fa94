#!/usr/bin/env bash
# Push cost against the floor. One nginx + nchan target, N subscribers on
# one channel, RATE messages/s for HOLD seconds; per transport (WebSocket,
# SSE) and per subscriber, in alternating passes:
#   stampede    a normal run (accounting, ledgers, histograms, timers)
#   floor       examples/floor.rs: raw sockets, frame/event boundaries only
#   node        benches/servers/node_sub.js: Node's `ws` / `http`, no accounting
# Prints medians: CPU seconds per 100k deliveries (whole run: connects
# included, counted against every delivery of the run), the ratio to the
# floor, peak RSS per connection, and deliveries (lost = expected − got).
#
#   bash benches/floor.sh                       # N=2000 RATE=20 HOLD=20 PASSES=2
#   PASSES=1 N=500 bash benches/floor.sh
#   BASE=path/to/older/stampede bash benches/floor.sh   # adds its rows, alternating
# Needs nginx-light + libnginx-mod-nchan; node is optional (skipped if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RATE=${RATE:-20}
HOLD=${HOLD:-20}
PASSES=${PASSES:-2}
SETTLE=3   # seconds between the subscribers' start and the first publish
[ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] \
    || { echo "needs nginx-light + libnginx-mod-nchan" >&2; exit 2; }
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
cargo build --release --quiet --example floor
FLOOR=target/release/examples/floor
# The cheaper floor: one thread, no cross-thread wakeups (measured 0.64-0.70
# against 0.71-0.75 CPU s per 100k deliveries with two workers).
export FLOOR_THREADS=${FLOOR_THREADS:-1}
NODE=""; command -v node >/dev/null && [ -d tests/servers/graphql/node_modules/ws ] && NODE=node
TMP=$(mktemp -d); chmod 755 "$TMP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s#{RUNDIR}#$TMP#g" -e "s#{PORT}#$PORT#g" -e "s#{H2PORT}#$((PORT + 1))#g" -e "s#{LP_TIMEOUT}#30#g" \
    tests/data/nchan.conf > "$TMP/nginx.conf"
/usr/sbin/nginx -p "$TMP" -c "$TMP/nginx.conf" 2>"$TMP/nginx.err" & NGINX=$!
trap 'kill $NGINX 2>/dev/null; wait $NGINX 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/hello" >/dev/null && break; sleep 0.1; done

# Publishes RATE/s for HOLD s to channel $1 after SETTLE s (for the runs
# without stampede's own publisher); prints how many were accepted.
publish() {
    python3 - "$PORT" "$1" "$RATE" "$HOLD" "$SETTLE" <<'PY'
import http.client, sys, time
port, ch, rate, hold, settle = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
time.sleep(settle)
c = http.client.HTTPConnection("127.0.0.1", int(port))
body = "x" * 256
t0, ok = time.monotonic(), 0
for k in range(int(rate * hold)):
    d = t0 + k / rate - time.monotonic()
    if d > 0: time.sleep(d)
    c.request("POST", f"/pub/{ch}", body=body, headers={"Content-Type": "text/plain"})
    r = c.getresponse(); r.read()
    ok += r.status in (200, 201, 202)
print(ok)
PY
}

bare() { # tool(floor|node) kind(ws|sse) pass
    local ch="floor-$1-$2-$3" path out
    if [ "$2" = ws ]; then path="/ws/$ch"; else path="/sse/$ch"; fi
    out="$TMP/$1-$2-$3.json"
    if [ "$1" = floor ]; then
        $FLOOR "$2" "127.0.0.1:$PORT" "$path" "$N" $((SETTLE + HOLD + 2)) > "$out" &
    else
        node --max-old-space-size=4096 benches/servers/node_sub.js "$2" "127.0.0.1:$PORT" "$path" "$N" $((SETTLE + HOLD + 2)) > "$out" &
    fi
    local sub=$!
    publish "$ch" > "$out.published"
    wait $sub
}

stampede() { # transport(websocket|sse) pass [binary tool-name]
    cat > "$TMP/s.toml" <<TOML
name = "floor"
target = "http://127.0.0.1:$PORT"
profile = "nchan"
duration = "${HOLD}s"
ramp_up = "2s"
warmup = "1s"
[publisher]
rate = $RATE
payload_bytes = 256
channels = 1
[[groups]]
transport = "$1"
clients = $N
TOML
    ${3:-$BIN} run "$TMP/s.toml" --quiet --no-report --out "$TMP/${4:-stampede}-$1-$2" >/dev/null
}

for p in $(seq "$PASSES"); do
    for k in ws sse; do
        t=$([ $k = ws ] && echo websocket || echo sse)
        stampede "$t" "$p"
        [ -n "${BASE:-}" ] && stampede "$t" "$p" "$BASE" base
        bare floor "$k" "$p"
        [ -n "$NODE" ] && bare node "$k" "$p"
    done
done

python3 - "$TMP" "$PASSES" "$N" "$RATE" "$HOLD" "${NODE:+node}" "${BASE:+base}" <<'PY'
import csv, json, statistics, sys
tmp, passes, n, rate, hold, node, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
print(f"nginx + nchan, {n} subscribers on one channel, {rate:g} messages/s for {hold:g} s, medians of {passes} passes")
print()
print("| transport | subscriber | CPU s / 100k deliveries | × floor | peak RSS KiB / connection | deliveries (expected) |")
print("|---|---|---:|---:|---:|---:|")
tools = ["stampede"] + (["base"] if base else []) + ["floor"] + (["node"] if node else [])
for k, t in [("ws", "websocket"), ("sse", "sse")]:
    rows = {}
    for tool in tools:
        cpu, rss, got, exp = [], [], [], []
        for p in range(1, passes + 1):
            if tool in ("stampede", "base"):
                d = f"{tmp}/{tool}-{t}-{p}"
                row = next(csv.DictReader(open(f"{d}/summary.csv")))
                # Every delivery of the run (ramp and warm-up included), as
                # the bare subscribers count theirs, against the run's CPU.
                dels = sum(int(r["deliveries"]) for r in csv.DictReader(open(f"{d}/timeseries.csv")))
                cpu.append(float(row["client_cpu_s"]) / dels * 1e5)
                rss.append(float(row["client_rss_peak_mb"]) * 1024 / n)
                got.append(int(row["delivered"])); exp.append(int(row["expected"]))
            else:
                j = json.load(open(f"{tmp}/{tool}-{k}-{p}.json"))
                published = int(open(f"{tmp}/{tool}-{k}-{p}.json.published").read())
                cpu.append(j["cpu_s"] / max(j["messages"], 1) * 1e5)
                rss.append(j["peak_rss_kib"] / n)
                # nchan greets each SSE subscriber with one comment event
                # (`: hi`), which the bare counters count too.
                greet = n if k == "sse" else 0
                got.append(j["messages"] - greet); exp.append(published * n)
        rows[tool] = (statistics.median(cpu), statistics.median(rss), statistics.median(got), statistics.median(exp))
    for tool, (cpu, rss, got, exp) in rows.items():
        print(f"| {t} | {tool} | {cpu:.2f} | {cpu / rows['floor'][0]:.2f} | {rss:.1f} | {got:.0f} ({exp:.0f}) |")
PY
