#!/usr/bin/env bash
# Does HTTP/2 make SSE cheaper for the server? The same event stream to
# SSE subscribers over HTTP/1.1, over HTTP/2 with a connection per client,
# and over HTTP/2 with ten clients' streams on one connection, each in its
# own run against a fresh reference server (so the target's marginal
# memory is its own), in alternating passes. Prints medians: target CPU
# per 1,000 deliveries, target memory per 1,000 subscribers (marginal:
# without the server's baseline), wire bytes per delivery, client CPU per
# delivery, delivery p50 / p99, TCP connections.
#
#   bash benches/sse-http2.sh                # 3 passes, 1000 clients
#   PASSES=1 CLIENTS=200 STAMPEDE=path/to/stampede bash benches/sse-http2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PASSES=${PASSES:-3}
CLIENTS=${CLIENTS:-1000}
if [ -n "${STAMPEDE:-}" ]; then BIN=$STAMPEDE; else cargo build --release --quiet; BIN=target/release/stampede; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() { # name extra-group-lines out
    cat > "$TMP/s.toml" <<TOML
name = "sse-http2"
duration = "20s"
ramp_up = "5s"
warmup = "2s"
[publisher]
rate = 20
payload_bytes = 256
channels = 10
[[groups]]
name = "$1"
transport = "sse"
clients = $CLIENTS
$2
TOML
    $BIN run "$TMP/s.toml" --quiet --no-report --out "$3" >/dev/null
}

for p in $(seq "$PASSES"); do
    run sse "" "$TMP/sse-$p"
    run sse-h2 "http2 = true" "$TMP/sse-h2-$p"
    run sse-h2-mux10 $'http2 = true\nstreams_per_connection = 10' "$TMP/sse-h2-mux10-$p"
done
python3 - "$TMP" "$PASSES" "$CLIENTS" <<'PY'
import csv, statistics, sys
tmp, passes, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"{clients} SSE subscribers, 20 events/s over 10 channels, 20 s; medians of {passes} passes")
print()
print("| group | target CPU ms / 1k deliveries | target MB / 1k subscribers (marginal) | target connections peak | wire bytes / delivery | client CPU µs / delivery | delivery p50 / p99 ms | lost |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for g in ["sse", "sse-h2", "sse-h2-mux10"]:
    rows = [next(csv.DictReader(open(f"{tmp}/{g}-{p}/summary.csv"))) for p in range(1, passes + 1)]
    def med(f):
        vals = [v for v in (f(r) for r in rows) if v is not None]
        return statistics.median(vals) if vals else float("nan")
    num = lambda r, k: float(r[k]) if r.get(k) not in (None, "") else None
    cpu = med(lambda r: num(r, "target_cpu_s") * 1e6 / int(r["delivered"]) if num(r, "target_cpu_s") else None)
    mem = med(lambda r: num(r, "target_rss_marginal_per_1k_conn_mb"))
    conns = med(lambda r: num(r, "target_connections_peak"))
    bpd = med(lambda r: num(r, "bytes_per_delivery"))
    ccpu = med(lambda r: num(r, "client_cpu_s") * 1e6 / int(r["delivered"]))
    p50, p99 = med(lambda r: num(r, "delivery_p50_ms")), med(lambda r: num(r, "delivery_p99_ms"))
    lost = sum(int(r["lost"]) for r in rows)
    print(f"| {g} | {cpu:.1f} | {mem:.1f} | {conns:.0f} | {bpd:.0f} | {ccpu:.1f} | {p50:.1f} / {p99:.1f} | {lost} |")
PY
