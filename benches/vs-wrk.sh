#!/usr/bin/env bash
# stampede's request mode against wrk, on the same target and the same job:
# nginx's `return 200` location /hello (tests/data/nchan.conf, one worker),
# 50 keep-alive connections, closed model, 10 s. The two tools alternate
# (A B A B A B) so that drift on a shared machine hits both alike. For each
# run: requests/s as the tool reports it, latency p50/p99, and the CPU
# seconds of the load-generator process alone (GNU time: user + system),
# from which CPU seconds per 100,000 requests. The last line is the ratio of
# the medians, stampede/wrk.
#
#   bash benches/vs-wrk.sh
#   RUNS=5 DURATION=20 bash benches/vs-wrk.sh       # longer
#   STAMPEDE=/path/to/stampede bash benches/vs-wrk.sh   # skip the build
#
# Needs: wrk, nginx-light + libnginx-mod-nchan, GNU time (/usr/bin/time),
# curl; cargo unless STAMPEDE is given. Loopback only: client and target
# share the CPUs, so read ratios, not absolutes.
set -euo pipefail

runs="${RUNS:-3}"
secs="${DURATION:-10}"
conns="${CONNECTIONS:-50}"
wrk_threads="${WRK_THREADS:-2}"
here="$(cd "$(dirname "$0")/.." && pwd)"

die() {
    echo "vs-wrk: $*" >&2
    exit 2
}
command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
[ -x /usr/sbin/nginx ] || die "nginx not found: apt-get install nginx-light libnginx-mod-nchan"
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] ||
    die "nchan module not found: apt-get install libnginx-mod-nchan"
[ -x /usr/bin/time ] || die "GNU time not found (/usr/bin/time): apt-get install time"
command -v curl >/dev/null || die "curl not found: apt-get install curl"

rundir="$(mktemp -d -t stampede-vs-wrk.XXXXXX)"
chmod 755 "$rundir" # nginx's worker may run as another user
nginx_pid=""
cleanup() {
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        # The master stops its worker and reaps it before it exits.
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stampede: the release build (a debug build would measure the compiler's
# lack of optimisation, not the tool).
if [ -n "${STAMPEDE:-}" ]; then
    stampede="$STAMPEDE"
else
    echo "vs-wrk: building stampede (release) if needed" >&2
    (cd "$here" && cargo build --release --locked --quiet --bin stampede) ||
        die "cargo build --release failed"
    stampede="${CARGO_TARGET_DIR:-$here/target}/release/stampede"
fi
[ -x "$stampede" ] || die "no stampede binary at $stampede"

# A port with nothing listening on it or on the next one (the config also
# opens an h2c listener on PORT+1), below Linux's ephemeral range so that
# outgoing connections do not take it meanwhile.
port=""
for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
        port="$p"
        break
    fi
done
[ -n "$port" ] || die "no free port found"

sed -e "s#{RUNDIR}#$rundir#g" -e "s#{PORT}#$port#g" -e "s#{H2PORT}#$((port + 1))#g" \
    -e "s#{LP_TIMEOUT}#30#g" "$here/tests/data/nchan.conf" >"$rundir/nginx.conf"
# daemon off in that config: nginx stays our child, so the trap can stop it.
/usr/sbin/nginx -e "$rundir/error.log" -p "$rundir" -c "$rundir/nginx.conf" &
nginx_pid=$!
url="http://127.0.0.1:$port/hello"
for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || {
        cat "$rundir/error.log" >&2 || true
        die "nginx exited at start"
    }
    sleep 0.1
done
curl -fsS -o /dev/null "$url" || die "nginx does not answer $url"
echo "vs-wrk: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's#.*/##') on $url;" \
    "$runs x (wrk, stampede), $conns connections, ${secs}s each;" \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Milliseconds from wrk's latency notation (870.00us, 1.23ms, 1.05s).
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

# One column of a summary.csv (header row + one group row; no quoted cells
# in the columns read here).
csv_col() {
    awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i }
        NR == 2 && c { print $c }' "$1"
}

results="$rundir/results.tsv" # run tool rps p50 p99 cpu requests
: >"$results"

run_wrk() {
    local i="$1" out="$rundir/wrk-$i.txt" cpu="$rundir/wrk-$i.cpu"
    /usr/bin/time -f '%U %S' -o "$cpu" \
        wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency "$url" >"$out"
    local rps reqs p50 p99
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    reqs="$(awk '/ requests in / { print $1 }' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    [ -n "$rps" ] && [ -n "$reqs" ] || {
        cat "$out" >&2
        die "could not read wrk's output"
    }
    if grep -qE 'Non-2xx|Socket errors' "$out"; then
        echo "vs-wrk: wrk run $i reported errors: $(grep -E 'Non-2xx|Socket errors' "$out")" >&2
    fi
    printf '%s\twrk\t%s\t%s\t%s\t%s\t%s\n' "$i" "$rps" "$p50" "$p99" \
        "$(awk '{ print $1 + $2 }' "$cpu")" "$reqs" >>"$results"
}

run_stampede() {
    local i="$1" out="$rundir/stampede-$i" cpu="$rundir/stampede-$i.cpu"
    /usr/bin/time -f '%U %S' -o "$cpu" \
        "$stampede" run "$here/scenarios/request-closed.toml" --target "http://127.0.0.1:$port" \
        --profile nchan --set "duration=${secs}s" --set "groups.hello.clients=$conns" \
        --out "$out" --quiet --no-report >/dev/null
    local csv="$out/summary.csv" errors
    [ -f "$csv" ] || die "stampede wrote no $csv"
    errors="$(csv_col "$csv" errors)"
    if [ "${errors:-0}" != 0 ]; then
        echo "vs-wrk: stampede run $i counted $errors errors" >&2
    fi
    printf '%s\tstampede\t%s\t%s\t%s\t%s\t%s\n' "$i" "$(csv_col "$csv" requests_per_s)" \
        "$(csv_col "$csv" request_uncorrected_p50_ms)" \
        "$(csv_col "$csv" request_uncorrected_p99_ms)" \
        "$(awk '{ print $1 + $2 }' "$cpu")" "$(csv_col "$csv" requests)" >>"$results"
}

# nginx handles SIGINT itself (fast shutdown), so after a Ctrl-C, or if it
# died, the remaining runs would only measure connection errors: stop.
nginx_alive() {
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx is gone (interrupted, or see its error log)"
}

for i in $(seq 1 "$runs"); do
    echo "vs-wrk: run $i/$runs: wrk" >&2
    run_wrk "$i"
    nginx_alive
    echo "vs-wrk: run $i/$runs: stampede" >&2
    run_stampede "$i"
    nginx_alive
done

# The table, the medians per tool, then the ratios as the last line.
awk -F'\t' '
function median(list, n,    i, j, t, a) {
    split(list, a, " ")
    for (i = 1; i <= n; i++)
        for (j = i + 1; j <= n; j++)
            if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    per100k = $7 > 0 ? $6 / $7 * 100000 : 0
    printf "| %s | %s | %.0f | %.3f | %.3f | %.2f | %.3f |\n", $1, $2, $3, $4, $5, $6, per100k
    n[$2]++
    rps[$2] = rps[$2] " " $3; p50[$2] = p50[$2] " " $4; p99[$2] = p99[$2] " " $5
    cpu[$2] = cpu[$2] " " $6; per[$2] = per[$2] " " per100k
}
BEGIN {
    print "| run | tool | requests/s | p50 ms | p99 ms | CPU s | CPU s per 100k requests |"
    print "|---|---|---:|---:|---:|---:|---:|"
}
END {
    print ""
    print "| median | tool | requests/s | p50 ms | p99 ms | CPU s | CPU s per 100k requests |"
    print "|---|---|---:|---:|---:|---:|---:|"
    split("wrk stampede", tools, " ")
    for (t = 1; t <= 2; t++) {
        k = tools[t]
        m_rps[k] = median(rps[k], n[k]); m_per[k] = median(per[k], n[k])
        printf "| of %d | %s | %.0f | %.3f | %.3f | %.2f | %.3f |\n", n[k], k, m_rps[k],
            median(p50[k], n[k]), median(p99[k], n[k]), median(cpu[k], n[k]), m_per[k]
    }
    print ""
    printf "ratio stampede/wrk: requests/s %.2f, CPU per request %.2f\n",
        m_rps["stampede"] / m_rps["wrk"], m_per["stampede"] / m_per["wrk"]
}' "$results"
