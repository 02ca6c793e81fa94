#!/usr/bin/env bash
# Cost as the work grows: half WebSocket, half SSE subscribers of the
# reference server at each size, one event per second per client (a
# channel per 500 clients at 1 event/s), 30 s hold, `--processes auto`.
# Prints stampede's CPU per 100k deliveries (whole run: ramp included) and
# its peak RSS per connection (all processes, baselines included), with
# delivery p99 and lost. Flat columns mean cost linear in the work.
#
#   bash benches/scale.sh                  # 1000 10000 50000 100000
#   SIZES="1000 10000" bash benches/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 10000 50000 100000}
HOLD=${HOLD:-30s}
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for n in $SIZES; do
    half=$((n / 2))
    channels=$(( (n + 499) / 500 ))
    ramp=$(( n / 1250 )); [ "$ramp" -lt 5 ] && ramp=5
    cat > "$TMP/s.toml" <<TOML
name = "scale-$n"
duration = "$HOLD"
ramp_up = "${ramp}s"
warmup = "5s"
drain = "3s"
mode = "concurrent"
[publisher]
rate = $channels
channels = $channels
payload_bytes = 64
[[groups]]
transport = "websocket"
clients = $half
ping_interval = "30s"
[[groups]]
transport = "sse"
clients = $half
TOML
    $BIN run "$TMP/s.toml" --processes auto --quiet --no-report --out "$TMP/run-$n" >/dev/null
done
python3 - "$TMP" $SIZES <<'PY'
import csv, sys
tmp, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
print("| subscribers | CPU s / 100k deliveries | stampede RSS KiB / connection | delivery p99 ms (ws / sse) | lost | load generator saturated |")
print("|---:|---:|---:|---:|---:|---|")
for n in sizes:
    d = f"{tmp}/run-{n}"
    rows = list(csv.DictReader(open(f"{d}/summary.csv")))
    dels = sum(int(r["deliveries"]) for r in csv.DictReader(open(f"{d}/timeseries.csv")))
    cpu = float(rows[0]["client_cpu_s"])    # whole-run value, repeated per group
    rss = float(rows[0]["client_rss_peak_mb"]) * 1024 / n
    p99 = " / ".join(r["delivery_p99_ms"] for r in rows)
    lost = sum(int(r["lost"]) for r in rows)
    sat = ", ".join(sorted({r.get("loadgen_saturated", "") for r in rows}))
    print(f"| {n:,} | {cpu / dels * 1e5:.2f} | {rss:.1f} | {p99} | {lost} | {sat} |")
PY
