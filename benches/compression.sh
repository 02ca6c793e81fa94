#!/usr/bin/env bash
# The cost of compression to the client: SSE subscribers of one server that
# gzips its event stream (flushed per event) when Accept-Encoding offers it,
# with and without `accept_encoding`, in alternating passes. Prints wire
# bytes and client CPU per delivery (medians).
#
#   bash benches/compression.sh             # 3 passes
#   PASSES=1 CLIENTS=100 STAMPEDE=path/to/stampede bash benches/compression.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PASSES=${PASSES:-3}
CLIENTS=${CLIENTS:-200}
PAYLOAD=${PAYLOAD:-512}
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
TMP=$(mktemp -d)
python3 -u benches/servers/sse_gzip.py > "$TMP/port" & SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(head -1 "$TMP/port")

run() { # accept-encoding-line out
    cat > "$TMP/c.toml" <<TOML
name = "compression"
target = "http://127.0.0.1:$PORT"
duration = "10s"
ramp_up = "2s"
warmup = "1s"
[publisher]
rate = 20
payload_bytes = $PAYLOAD
[[groups]]
transport = "sse"
clients = $CLIENTS
[profile]
$1
[profile.publish]
url = "/pub/{channel}"
[profile.sse]
url = "/sse/{channel}"
TOML
    $BIN run "$TMP/c.toml" --quiet --no-report --out "$2" >/dev/null
}

for p in $(seq "$PASSES"); do
    run "" "$TMP/plain-$p"
    run 'accept_encoding = "gzip, deflate, br"' "$TMP/gzip-$p"
done
python3 - "$TMP" "$PASSES" <<'PY'
import csv, statistics, sys
tmp, passes = sys.argv[1], int(sys.argv[2])
print("| SSE stream | wire bytes per delivery | client CPU µs per delivery | delivery p50 / p99 ms | lost |")
print("|---|---:|---:|---:|---:|")
for side in ["plain", "gzip"]:
    rows = [next(csv.DictReader(open(f"{tmp}/{side}-{p}/summary.csv"))) for p in range(1, passes + 1)]
    med = lambda f: statistics.median(f(r) for r in rows)
    bpd = med(lambda r: float(r["bytes_per_delivery"]))
    cpu = med(lambda r: float(r["client_cpu_s"]) / int(r["delivered"]) * 1e6)
    p50, p99 = med(lambda r: float(r["delivery_p50_ms"])), med(lambda r: float(r["delivery_p99_ms"]))
    lost = sum(int(r["lost"]) for r in rows)
    print(f"| {side} | {bpd:.0f} | {cpu:.2f} | {p50:.1f} / {p99:.1f} | {lost} |")
PY
