#!/usr/bin/env bash
# Runs every grpcurl example of README.md exactly as written (listed by .ci/readme_grpcurl.py):
#   - those on 127.0.0.1:50051 against `zdsync demo` (the README's first command),
#   - those on 127.0.0.1:50052 against `zdsync simulate` + `zdsync serve` started as the README's
#     "By hand against the simulator" section starts them.
# TOKEN is the daemon's admin token; READ (the README's read token) is the admin token too, which may call
# MetricsService. A command fails the step unless it exits 0; WatchTimelineEvents streams until it is stopped, so
# it runs for 3 s and must have printed an event by then. Before a ForceSync the script waits for the run in
# progress to end, as a reader would.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${ZDSYNC_BIN:-target/debug/zdsync}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 .ci/readme_grpcurl.py README.md > "$work/commands.jsonl"
total=$(wc -l < "$work/commands.jsonl")
[ "$total" -gt 0 ] || { echo "no grpcurl commands found in README.md"; exit 1; }

# wait_for FILE PATTERN: until a line of FILE matches, at most 120 s.
wait_for() {
  for _ in $(seq 1 1200); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:"; cat "$1"; return 1
}

# wait_idle ADDR: until GetStatus says IDLE (the run in progress ended), at most 120 s.
wait_idle() {
  for _ in $(seq 1 1200); do
    grpcurl -plaintext -H "authorization: Bearer $TOKEN" "$1" zdsync.v1.IntegrationService/GetStatus \
      | grep -q '"state": "IDLE"' && return 0
    sleep 0.1
  done
  echo "$1 did not become IDLE"; return 1
}

ran=0
# run_group ADDR: runs the README's commands that target ADDR, in README order.
run_group() {
  local addr=$1
  python3 - "$work/commands.jsonl" "$addr" > "$work/group" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    item = json.loads(line)
    if item["addr"] == sys.argv[2]:
        sys.stdout.write("%d\0%s\0" % (item["line"], item["command"]))
PY
  while IFS= read -r -d '' number && IFS= read -r -d '' command; do
    printf -- '-- README.md:%s\n%s\n' "$number" "$command"
    case "$command" in
      *IntegrationService/ForceSync*) wait_idle "$addr" ;;
    esac
    if [[ "$command" == *WatchTimelineEvents* ]]; then
      status=0
      timeout 3 bash -c "$command" > "$work/out" 2>&1 || status=$?
      [ "$status" -eq 124 ] && grep -q '"event"' "$work/out" || { cat "$work/out"; echo "FAILED (exit $status)"; exit 1; }
      head -c 300 "$work/out"; echo " ..."
    else
      bash -c "$command" > "$work/out" 2>&1 || { cat "$work/out"; echo "FAILED"; exit 1; }
      head -c 300 "$work/out"; echo
    fi
    ran=$((ran + 1))
  done < "$work/group"
}

echo "== zdsync demo on 127.0.0.1:50051"
"$bin" demo > "$work/demo.out" 2> "$work/demo.err" &
pids+=($!)
wait_for "$work/demo.out" '^zdsync demo ready: '
token_file="$(sed -n 's/^zdsync demo ready: .*admin_token_file=\([^ ]*\).*/\1/p' "$work/demo.out")"
export TOKEN READ
TOKEN="$(cat "$token_file")"
READ="$TOKEN"
run_group 127.0.0.1:50051

echo "== zdsync simulate on 127.0.0.1:8080 and zdsync serve on 127.0.0.1:50052"
"$bin" simulate --listen 127.0.0.1:8080 --tickets 5000 > "$work/sim.out" 2> "$work/sim.err" &
pids+=($!)
wait_for "$work/sim.out" '^listening on http://127.0.0.1:8080'
ZDSYNC_DATA_DIR="$work/sim-data" ZDSYNC_ZENDESK_BASE_URL=http://127.0.0.1:8080 \
  ZDSYNC_ZENDESK_REQUESTS_PER_MINUTE=0 "$bin" serve --listen 127.0.0.1:50052 > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
wait_for "$work/serve.err" 'zdsync listening'
TOKEN="$(cat "$work/sim-data/admin.token")"
READ="$TOKEN"
run_group 127.0.0.1:50052

if [ "$ran" -ne "$total" ]; then
  echo "ran $ran of the README's $total grpcurl commands: some target neither 127.0.0.1:50051 nor 127.0.0.1:50052"
  exit 1
fi
echo "all $total grpcurl commands of README.md ran as written"
