#!/usr/bin/env bash
# End to end: our coordinator, our dmtcp_command and the load generator
# together (ctest runs this on the sanitizer build). Loopback, a kernel-chosen
# port, every wait bounded; the coordinator is killed on any exit.
set -euo pipefail
coord=$1 cmd=$2 loadgen=$3
dir=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "e2e: $*" >&2; exit 1; }

"$coord" --quiet --coord-port 0 --port-file "$dir/port" --timeout 100 --ckptdir "$dir" </dev/null >/dev/null 2>"$dir/coord.err" &
pid=$!
for _ in $(seq 200); do [[ -s $dir/port ]] && break; sleep 0.05; done
[[ -s $dir/port ]] || fail "the coordinator did not write its port file: $(cat "$dir/coord.err")"
port=$(cat "$dir/port")

out=$("$cmd" --json -p "$port" -s)
[[ $out == '{"schema_version":1,"command":"DMT_STATUS","command_status":"DMT_COORD_SUCCESS","coordinator_host":"localhost","coordinator_port":'"$port"',"num_peers":0,"running":false,"checkpoint_interval":0}' ]] ||
  fail "unexpected status: $out"

# Plain and blocking checkpoint rounds with 64 synthetic workers.
"$loadgen" --port "$port" --workers 64 --rounds 2 --timeout 60 --coordinator-pid "$pid" >"$dir/plain.json"
"$loadgen" --port "$port" --workers 16 --rounds 2 --blocking --barriers 4 --timeout 60 >"$dir/blocking.json"
grep -q '"workers":64' "$dir/plain.json" || fail "load generator output: $(cat "$dir/plain.json")"
grep -q '"completeMs"' "$dir/blocking.json" || fail "blocking run output: $(cat "$dir/blocking.json")"

# The workers are gone; the coordinator still answers and quits cleanly.
out=$("$cmd" -p "$port" -s)
[[ $out == *"NUM_PEERS=0"* ]] || fail "status after the runs: $out"
"$cmd" -p "$port" -q
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then fail "the coordinator did not quit"; fi
wait "$pid" || fail "the coordinator exited with status $?"
pid=
echo "e2e: ok"
