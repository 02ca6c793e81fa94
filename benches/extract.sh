#!/usr/bin/env bash
# CPU per delivery of a plain relay (the built-in target, a separate
# process) before and after envelope extraction: the same scenario run with
# a baseline build (BASE, e.g. a release build of main) and this build,
# alternating, ROUNDS times per transport. Prints each side's median
# stampede CPU microseconds per delivered event and the ratio (this / base).
#
#   BASE=/path/to/stampede-main bash benches/extract.sh
#   STAMPEDE=/path/to/this/stampede   # skip the build
# CLIENTS (1000), ROUNDS (3), HOLD (10s), TRANSPORTS ("websocket sse ndjson").
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE:?set BASE to a baseline stampede binary (a release build of main)}"
CLIENTS=${CLIENTS:-1000}
ROUNDS=${ROUNDS:-3}
HOLD=${HOLD:-10s}
TRANSPORTS=${TRANSPORTS:-websocket sse ndjson}
if [ -n "${STAMPEDE:-}" ]; then
    BIN=$STAMPEDE
else
    cargo build --release --quiet
    BIN=target/release/stampede
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() { # binary transport out
    cat > "$TMP/relay.toml" <<TOML
name = "relay"
duration = "$HOLD"
ramp_up = "2s"
warmup = "2s"
drain = "1s"
[publisher]
rate = 200
channels = 10
payload_bytes = 128
[[groups]]
transport = "$2"
clients = $CLIENTS
TOML
    "$1" run "$TMP/relay.toml" --quiet --no-report --out "$3" >/dev/null
}

us_per_delivery() { # dir
    python3 - "$1" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
d = float(row["delivered"] or 0)
print(f"{float(row['client_cpu_s']) * 1e6 / d:.3f} {row['lost']}" if d else "nan -")
PY
}

printf '| transport | base µs CPU / delivery (median) | this | ratio | lost (base, this) |\n'
printf '|---|---:|---:|---:|---|\n'
for t in $TRANSPORTS; do
    : > "$TMP/base.txt"; : > "$TMP/this.txt"
    for r in $(seq "$ROUNDS"); do
        run "$BASE" "$t" "$TMP/b$r"; us_per_delivery "$TMP/b$r" >> "$TMP/base.txt"
        run "$BIN" "$t" "$TMP/t$r"; us_per_delivery "$TMP/t$r" >> "$TMP/this.txt"
    done
    python3 - "$TMP/base.txt" "$TMP/this.txt" "$t" <<'PY'
import statistics, sys
def load(p):
    rows = [l.split() for l in open(p) if l.strip()]
    return [float(r[0]) for r in rows], [r[1] for r in rows]
b, bl = load(sys.argv[1]); t, tl = load(sys.argv[2])
mb, mt = statistics.median(b), statistics.median(t)
print(f"| {sys.argv[3]} | {mb:.3f} | {mt:.3f} | {mt / mb:.3f} | {','.join(bl)} ; {','.join(tl)} |")
PY
done
