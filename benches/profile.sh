#!/usr/bin/env bash
# Where stampede's CPU per delivery goes: a WebSocket or SSE hold against
# nginx + nchan (N subscribers on one channel, RATE messages/s), sampled by
# Linux perf (software clock: this VM has no hardware counters) and printed
# as the top symbols by self time, grouped into stampede / tokio / kernel /
# libc / other.
#
#   bash benches/profile.sh [websocket|sse]     # N=2000 RATE=20 HOLD=15
# Needs linux-perf, nginx-light + libnginx-mod-nchan.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-websocket}
N=${N:-2000}
RATE=${RATE:-20}
HOLD=${HOLD:-15}
TOP=${TOP:-25}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 2; }
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
TMP=$(mktemp -d); chmod 755 "$TMP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s#{RUNDIR}#$TMP#g" -e "s#{PORT}#$PORT#g" -e "s#{H2PORT}#$((PORT + 1))#g" -e "s#{LP_TIMEOUT}#30#g" \
    tests/data/nchan.conf > "$TMP/nginx.conf"
/usr/sbin/nginx -p "$TMP" -c "$TMP/nginx.conf" 2>"$TMP/nginx.err" & NGINX=$!
trap 'kill $NGINX 2>/dev/null; wait $NGINX 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/hello" >/dev/null && break; sleep 0.1; done
cat > "$TMP/s.toml" <<TOML
name = "profile"
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
transport = "$KIND"
clients = $N
TOML
perf record -q -F 999 -o "$TMP/perf.data" -- "$BIN" run "$TMP/s.toml" --quiet --no-report --out "$TMP/run" >/dev/null 2>"$TMP/perf.err"
python3 - "$TMP/run" <<'PY'
import csv, sys
row = next(csv.DictReader(open(f"{sys.argv[1]}/summary.csv")))
dels = sum(int(r["deliveries"]) for r in csv.DictReader(open(f"{sys.argv[1]}/timeseries.csv")))
print(f"{row['group']}: {dels} deliveries, {row['client_cpu_s']} CPU s, "
      f"{float(row['client_cpu_s']) / dels * 1e5:.2f} CPU s per 100k, lost {row['lost']}")
PY
perf report -i "$TMP/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' > "$TMP/top.txt" || true
python3 - "$TMP/top.txt" "$TOP" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if m:
        rows.append((float(m.group(1)), m.group(2), m.group(3).strip()))
def group(dso, sym):
    if "kernel" in dso: return "kernel"
    if dso.startswith("libc"): return "libc"
    if "tokio" in sym: return "tokio"
    if "stampede" in sym or "hdrhistogram" in sym: return "stampede"
    return "other (std, hyper, tungstenite, alloc)"
groups = {}
for pct, dso, sym in rows:
    g = group(dso, sym); groups[g] = groups.get(g, 0) + pct
print("\n| share | where |\n|---:|---|")
for g, pct in sorted(groups.items(), key=lambda x: -x[1]):
    print(f"| {pct:.1f}% | {g} |")
print(f"\n| self % | dso | symbol |\n|---:|---|---|")
for pct, dso, sym in rows[: int(sys.argv[2])]:
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)[:110]
    print(f"| {pct:.2f} | {dso} | `{sym}` |")
PY
