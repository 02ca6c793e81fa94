#!/usr/bin/env bash
# Runs nginx + nchan in the foreground as a target for stampede, with the
# configuration the tests use (tests/data/nchan.conf): all four transports
# on /sub, /ws, /sse, /lp, /poll, publishing on /pub, and /hello for
# request load (and /hello over h2c on PORT+1). Ctrl-C stops it.
#
#   scripts/nchan-target.sh [PORT] [LP_TIMEOUT_S]     (defaults 8090, 30)
#   stampede run scenarios/compare-transports.toml \
#       --target http://127.0.0.1:8090 --profile nchan
#
# Needs: apt-get install nginx-light libnginx-mod-nchan
set -euo pipefail
port="${1:-8090}"
lp_timeout="${2:-30}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ -x /usr/sbin/nginx ] || { echo "nginx not found: apt-get install nginx-light libnginx-mod-nchan" >&2; exit 2; }
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || { echo "nchan module not found: apt-get install libnginx-mod-nchan" >&2; exit 2; }
rundir="$(mktemp -d -t stampede-nchan.XXXXXX)"
chmod 755 "$rundir"
trap 'rm -rf "$rundir"' EXIT
sed -e "s#{RUNDIR}#$rundir#g" -e "s#{PORT}#$port#g" -e "s#{H2PORT}#$((port + 1))#g" \
    -e "s#{LP_TIMEOUT}#$lp_timeout#g" \
    "$here/tests/data/nchan.conf" > "$rundir/nginx.conf"
echo "nchan on http://127.0.0.1:$port, h2c /hello on port $((port + 1)) (config and logs in $rundir)" >&2
/usr/sbin/nginx -p "$rundir" -c "$rundir/nginx.conf" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$rundir"' EXIT INT TERM
wait $pid
