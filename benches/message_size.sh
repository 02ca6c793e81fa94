#!/usr/bin/env bash
# Client CPU per megabyte delivered, per transport, for 1 KiB, 64 KiB and
# 1 MiB events against the built-in reference server: a parser that scans
# each byte a bounded number of times keeps CPU per MB roughly flat as the
# event grows (linear cost); a quadratic one grows with the size.
#
#   bash benches/message_size.sh            # 3 alternating passes, medians
#   PASSES=1 STAMPEDE=path/to/stampede bash benches/message_size.sh
#
# Each cell: client CPU s / MB received (wire bytes), median of the passes.
# The event count is scaled so every size moves about the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
PASSES=${PASSES:-3}
TRANSPORTS=${TRANSPORTS:-sse ndjson websocket long-poll}
SIZES=${SIZES:-1024 65536 1048576}
if [ -n "${STAMPEDE:-}" ]; then
    BIN=$STAMPEDE
else
    cargo build --release --quiet
    BIN=target/release/stampede
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() { # transport size out
    # About 8 MB per client per run, whatever the size.
    rate=$(python3 -c "print(max(1, min(2000, round(8 * 1048576 / $2 / 8))))")
    cat > "$TMP/size.toml" <<TOML
name = "message-size"
duration = "8s"
ramp_up = "1s"
warmup = "1s"
drain = "2s"
[publisher]
rate = $rate
payload_bytes = $2
[[groups]]
transport = "$1"
clients = 4
TOML
    $BIN run "$TMP/size.toml" --quiet --no-report --out "$3" >/dev/null
}

for p in $(seq "$PASSES"); do
    for s in $SIZES; do
        for t in $TRANSPORTS; do
            run "$t" "$s" "$TMP/$p-$t-$s"
        done
    done
done

python3 - "$TMP" "$PASSES" "$TRANSPORTS" "$SIZES" <<'PY'
import csv, statistics, sys
tmp, passes, transports, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
def cell(t, s):
    vals, lost = [], 0
    for p in range(1, passes + 1):
        row = next(csv.DictReader(open(f"{tmp}/{p}-{t}-{s}/summary.csv")))
        mb = int(row["bytes_received"]) / 1048576
        vals.append(float(row["client_cpu_s"]) / mb if mb else float("nan"))
        lost += int(row["lost"] or 0)
    return statistics.median(vals), lost
label = {"1024": "1 KiB", "65536": "64 KiB", "1048576": "1 MiB"}
print("| transport | " + " | ".join(f"{label.get(s, s)} CPU ms/MB" for s in sizes) + f" | 1 MiB ÷ {label.get(sizes[0], sizes[0])} | lost |")
print("|---|" + "---:|" * (len(sizes) + 2))
for t in transports:
    cells = [cell(t, s) for s in sizes]
    ms = [c[0] * 1000 for c in cells]
    print(f"| {t} | " + " | ".join(f"{m:.2f}" for m in ms) + f" | {ms[-1] / ms[0]:.2f} | {sum(c[1] for c in cells)} |")
PY
