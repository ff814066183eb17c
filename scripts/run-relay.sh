#!/usr/bin/env bash
# Set up, build, and run the sample relay in seed-compatibility mode on port 6001.
# Uses $HERALD_REDIS (or $REDIS_URL) when set; otherwise starts a local redis-server on 6379
# (or reuses one already answering there). Extra arguments go to `herald`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
REDIS="${HERALD_REDIS:-${REDIS_URL:-}}"
if [ -z "$REDIS" ]; then
  REDIS="redis://127.0.0.1:6379"
  if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
    mkdir -p .herald-run
    echo "==> starting a local redis-server on 127.0.0.1:6379 (data in .herald-run/)"
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$PWD/.herald-run" --logfile "$PWD/.herald-run/redis.log" --pidfile "$PWD/.herald-run/redis.pid"
  fi
fi
echo "==> herald on :6001, Redis $REDIS, key prefix '${HERALD_KEY_PREFIX:-}', emit-to-all on"
exec .build/debug/herald --redis "$REDIS" --emit-to-all "$@"
