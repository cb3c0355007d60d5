#!/usr/bin/env bash
# What many channels cost one orderer (docs/PERFORMANCE.md, "Many channels"):
#  1. join N channels (copies of the fixture solo genesis block) through the channel
#     participation API: join time, RSS and threads per channel, idle CPU;
#  2. restart with them: time from start to listening;
#  3. Broadcast over B of them at once vs one channel, alternating, ROUNDS times.
#
#   scripts/many-channels.sh [N=1000] [B=100] [ROUNDS=2] [BENCH-ARGS="-n 40000 -k 4 -s 2000"]
set -euo pipefail
n=${1:-1000} busy=${2:-100} rounds=${3:-2} bench_args=${4:--n 40000 -k 4 -s 2000}
cd "$(dirname "$0")/.."
cargo build --release -p orderer -q
data=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-$PWD/target}/release/orderer" "$data/orderer-bin"
bin=$data/orderer-bin
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
fixtures=testdata/fabric
msp=$fixtures/crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/msp
user=$fixtures/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp
port=${BENCH_PORT:-7993} admin=127.0.0.1:${BENCH_ADMIN_PORT:-7994}

start() {
  rm -f "$data/orderer.log"
  local t0; t0=$(date +%s.%N)
  "$bin" start --data-dir "$data/orderer" --listen 127.0.0.1:$port --admin-listen $admin \
    --operations-listen 127.0.0.1:0 --msp-dir $msp --msp-id OrdererMSP > "$data/orderer.log" 2>&1 &
  pid=$!
  until grep -qs "^listening on" "$data/orderer.log"; do
    kill -0 $pid 2>/dev/null || { cat "$data/orderer.log"; exit 1; }
    sleep 0.02
  done
  echo "start to listening: $(echo "$(date +%s.%N) - $t0" | bc) s (pid $pid)"
}

echo "== $(nproc) cores, $(git rev-parse --short HEAD)"
start
"$bin" bench-channels --genesis-block $fixtures/blocks/mychannel-solo-genesis.block \
  --count "$n" --prefix bench --admin $admin --orderer-pid $pid
echo "== restart with $n channels"
kill $pid; wait $pid 2>/dev/null || true
start
grep -c "^serving channel" "$data/orderer.log" | sed 's/^/channels served after restart: /'
echo "== Broadcast: 1 channel vs $busy channels at once (-f 0), $rounds rounds"
for round in $(seq 1 "$rounds"); do
  for channels in 1 "$busy"; do
    if [ "$channels" = 1 ]; then which="--channel bench-0"; else which="--channel bench --channels $channels"; fi
    # shellcheck disable=SC2086 # the argument lists are meant to split
    "$bin" bench --orderer 127.0.0.1:$port --msp-dir $user --msp-id Org1MSP \
      $which -f 0 --orderer-pid $pid --json $bench_args \
      | python3 -c "import json,sys; r=json.load(sys.stdin); print('round $round, $channels channel(s): %.0f acks/s, %.1f µs orderer CPU/envelope' % (r['acks_per_s'], r.get('orderer_cpu_us_per_envelope') or 0))"
  done
done
