#!/usr/bin/env bash
# Memory and CPU per held connection: N WebSocket clients, then N SSE
# clients, each run beside a baseline run of 100 clients of the same kind
# against the built-in target (a separate process), one event per second
# per channel. Prints, for each transport and each side (stampede, target):
# RSS per connection (growth from the baseline run to the N run, divided by
# the extra connections), connect time p99, and CPU ms per 1,000 delivered
# events.
#
#   bash benches/hold.sh [N]          # default N = 15000
#   STAMPEDE=/path/to/stampede bash benches/hold.sh   # skip the build
#   (e.g. an older build, for a same-machine before/after)
# HOLD, RAMP and TRANSPORTS ("websocket sse") shorten or narrow a run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-15000}
HOLD=${HOLD:-20s}
RAMP=${RAMP:-15s}
TRANSPORTS=${TRANSPORTS:-websocket sse}
if [ -n "${STAMPEDE:-}" ]; then
    BIN=$STAMPEDE
else
    cargo build --release --quiet
    BIN=target/release/stampede
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() { # transport clients out
    cat > "$TMP/hold.toml" <<TOML
name = "hold"
duration = "$HOLD"
ramp_up = "$RAMP"
warmup = "3s"
drain = "2s"
[publisher]
rate = 100
channels = 100
payload_bytes = 64
[[groups]]
transport = "$1"
clients = $2
TOML
    $BIN run "$TMP/hold.toml" --quiet --no-report --out "$3" >/dev/null
}

col() { # dir column
    python3 - "$1" "$2" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
print(row[sys.argv[2]])
PY
}

printf '| transport | side | connections | RSS KiB per connection | connect p99 ms | CPU ms per 1,000 deliveries | lost |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
for t in $TRANSPORTS; do
    run "$t" 100 "$TMP/$t-base"
    run "$t" "$N" "$TMP/$t-n"
    python3 - "$TMP/$t-base" "$TMP/$t-n" "$t" "$N" <<'PY'
import csv, sys
base = next(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
full = next(csv.DictReader(open(sys.argv[2] + "/summary.csv")))
t, n = sys.argv[3], int(sys.argv[4])
extra = n - 100
deliv = float(full["delivered"] or 0)
for side, rss, cpu in (("stampede", "client_rss_peak_mb", "client_cpu_s"),
                       ("target", "target_rss_peak_mb", "target_cpu_s")):
    per = (float(full[rss]) - float(base[rss])) * 1024 / extra
    cpu_per_k = float(full[cpu]) * 1000 / deliv * 1000 if deliv else float("nan")
    print(f"| {t} | {side} | {n} | {per:.1f} | {float(full['connect_p99_ms']):.1f} | {cpu_per_k:.2f} | {full['lost']} |")
PY
done
