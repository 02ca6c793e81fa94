#!/usr/bin/env bash
# What permessage-deflate costs a WebSocket subscriber: bytes on the wire and
# client CPU per delivery, compressed vs not. One peer (benches/ws_deflate_peer.py,
# which compresses only when the client offers it) serves both kinds of run;
# runs alternate plain / compressed ROUNDS times and the table ends with the
# medians. The client's CPU and RSS include its publisher, the same in both
# kinds.
#
#   bash benches/ws-deflate.sh                 # CLIENTS=100 RATE=200 BYTES=1024
#   STAMPEDE=/path/to/stampede bash benches/ws-deflate.sh   # skip the build
# CLIENTS, RATE (events/s over 10 channels), BYTES (payload), DURATION,
# ROUNDS change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-100}
RATE=${RATE:-200}
BYTES=${BYTES:-1024}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
if [ -n "${STAMPEDE:-}" ]; then
    BIN=$STAMPEDE
else
    cargo build --release --quiet
    BIN=target/release/stampede
fi
TMP=$(mktemp -d)
python3 -u benches/ws_deflate_peer.py >"$TMP/port" 2>"$TMP/peer.err" &
PEER=$!
trap 'kill $PEER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(head -1 "$TMP/port")

scenario() { # compression(true|false) file
    cat > "$2" <<TOML
name = "ws-deflate"
duration = "$DURATION"
warmup = "2s"
drain = "2s"
[publisher]
rate = $RATE
channels = 10
payload_bytes = $BYTES
[[groups]]
transport = "websocket"
clients = $CLIENTS
compression = $1
[profile]
[profile.publish]
url = "/pub/{channel}"
[profile.websocket]
url = "/ws/{channel}"
TOML
}
scenario false "$TMP/plain.toml"
scenario true "$TMP/deflate.toml"

for i in $(seq "$ROUNDS"); do
    for kind in plain deflate; do
        "$BIN" run "$TMP/$kind.toml" --target "http://127.0.0.1:$PORT" \
            --quiet --no-report --out "$TMP/$kind-$i" >/dev/null || true
    done
done

python3 - "$TMP" "$ROUNDS" "$CLIENTS" "$RATE" "$BYTES" <<'PY'
import csv, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
print(f"clients {sys.argv[3]}, {sys.argv[4]} events/s over 10 channels, payload {sys.argv[5]} B")
print("| run | kind | delivered | lost | errors | bytes received per delivery | client CPU µs per delivery | client RSS peak MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
med = {"plain": [], "deflate": []}
for i in range(1, rounds + 1):
    for kind in ("plain", "deflate"):
        r = next(csv.DictReader(open(f"{tmp}/{kind}-{i}/summary.csv")))
        d = int(r["delivered"] or 0)
        b = int(r["bytes_received"]) / d if d else float("nan")
        cpu = float(r["client_cpu_s"]) * 1e6 / d if d else float("nan")
        rss = float(r["client_rss_peak_mb"])
        med[kind].append((b, cpu, rss))
        print(f"| {i} | {kind} | {d} | {r['lost']} | {r['errors']} | {b:.0f} | {cpu:.1f} | {rss:.1f} |")
m = {k: [statistics.median(x[j] for x in v) for j in range(3)] for k, v in med.items()}
for k in ("plain", "deflate"):
    print(f"| median | {k} | | | | {m[k][0]:.0f} | {m[k][1]:.1f} | {m[k][2]:.1f} |")
print(f"ratio deflate/plain: bytes {m['deflate'][0] / m['plain'][0]:.2f}, CPU {m['deflate'][1] / m['plain'][1]:.2f}")
PY
