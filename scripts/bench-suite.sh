#!/usr/bin/env bash
# Runs `orderer bench` against a fresh dev-default orderer per configuration,
# alternating the configurations round by round so they are compared within one run
# (docs/PERFORMANCE.md). Appends one JSON object per run (the bench's report plus
# "label" and "round") to OUT and prints a one-line summary of each. Words of
# START-ARGS of the form NAME=VALUE are set in the orderer's environment (orderer.yaml
# keys as ORDERER_* variables), the others are arguments of `orderer start`.
# An optional fourth field names another orderer binary to start for that
# configuration (e.g. one built from an earlier commit, for before/after ratios), or
# is one of two words that run the fixture channel `mychannel` (one etcdraft
# consenter, orderer0, TLS on, User1@org1 as the client) instead of the dev default:
#   fixture   our orderer on it;
#   fabric    Fabric's own orderer on it ($FABRIC_REF, scripts/fabric-orderer.sh);
#             without FABRIC_REF these runs are skipped, saying so.
# The bench client is always ours.
#
#   scripts/bench-suite.sh OUT.jsonl ROUNDS "LABEL|START-ARGS|BENCH-ARGS[|ORDERER-BIN]" ...
#   scripts/bench-suite.sh /tmp/s.jsonl 3 "wasm||-n 40000 -k 4 -f 1" "native|--native-core|-n 40000 -k 4 -f 1"
#   scripts/bench-suite.sh /tmp/f.jsonl 3 "ours||-n 5000 -k 4 -f 1 --rate 1000|fixture" \
#     "fabric||-n 5000 -k 4 -f 1 --rate 1000|fabric"
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,10p' "$0"; exit 2; }
out=$1 rounds=$2
shift 2
cd "$(dirname "$0")/.."
cargo build --release -p orderer -q
data=$(mktemp -d)
# A copy: another build in a shared target folder cannot swap it mid-run.
cp "${CARGO_TARGET_DIR:-$PWD/target}/release/orderer" "$data/orderer-bin"
bin=$data/orderer-bin
port=${BENCH_PORT:-7991}
trap 'rm -rf "$data"' EXIT
fixture=$PWD/testdata/fabric
node=$fixture/crypto/ordererOrganizations/example.com/orderers/orderer0.example.com
fixture_client=(--channel mychannel --tls-ca "$node/tls/ca.crt"
  --msp-dir "$fixture/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp")
for round in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    IFS='|' read -r label start_args bench_args start_bin <<< "$spec"
    # The log goes first: the wait below must not find the previous run's line.
    rm -rf "$data/orderer" "$data/orderer.log"
    envs=(); args=()
    # shellcheck disable=SC2086 # the argument lists are meant to split
    for word in $start_args; do
      if [[ $word =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$word"); else args+=("$word"); fi
    done
    client=(--msp-dir "$data/orderer/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp")
    case $start_bin in
      fabric)
        if [ -z "${FABRIC_REF:-}" ]; then
          echo "$label round $round: skipped: FABRIC_REF is not set (no Fabric build to run)" >&2
          continue
        fi
        pid=$(ORDERER_BIN=$bin scripts/fabric-orderer.sh "$data/orderer" $port $((port + 1)))
        client=("${fixture_client[@]}")
        ;;
      *)
        if [ "$start_bin" = fixture ]; then
          envs+=(ORDERER_GENERAL_TLS_ENABLED=true "ORDERER_GENERAL_TLS_CERTIFICATE=$node/tls/server.crt"
            "ORDERER_GENERAL_TLS_PRIVATEKEY=$node/tls/server.key")
          args+=(--msp-dir "$node/msp" --msp-id OrdererMSP
            --genesis-block "$fixture/blocks/mychannel-etcdraft-genesis.block")
          client=("${fixture_client[@]}")
          start_bin=
        fi
        env "${envs[@]}" "${start_bin:-$bin}" start --data-dir "$data/orderer" --listen 127.0.0.1:$port \
          --admin-listen 127.0.0.1:0 "${args[@]}" > "$data/orderer.log" 2>&1 &
        pid=$!
        until grep -qs "^listening on" "$data/orderer.log"; do
          kill -0 $pid 2>/dev/null || { cat "$data/orderer.log"; exit 1; }
          sleep 0.1
        done
        ;;
    esac
    # shellcheck disable=SC2086
    report=$("$bin" bench --orderer 127.0.0.1:$port "${client[@]}" $bench_args \
      --orderer-pid $pid --json) || true
    kill $pid; wait $pid 2>/dev/null || true
    # Fabric's orderer is not this shell's child: wait until its port is free.
    while kill -0 $pid 2>/dev/null; do sleep 0.1; done
    LABEL=$label ROUND=$round python3 -c '
import json, os, sys
d = json.loads(sys.stdin.read())
d["label"], d["round"] = os.environ["LABEL"], int(os.environ["ROUND"])
print(json.dumps(d))
print("%-10s round %d: acks/s %6.0f, delivered/s %s, latency p50/p99/max %.2f/%.2f/%.2f ms, "
      "orderer %.1f us/envelope (%.2fx the floor), peak RSS %d MiB, client %.1f us/envelope, %s" % (
      d["label"], d["round"], d["acks_per_s"], "%.0f" % d["delivered_per_s"] if d["delivered_per_s"] else "-",
      d["latency_p50_ms"], d["latency_p99_ms"], d["latency_max_ms"], d["orderer_cpu_us_per_envelope"],
      d["orderer_cpu_vs_floor"], d["orderer_peak_rss_bytes"] >> 20, d["client_cpu_us_per_envelope"],
      {k: v["count"] for k, v in d["statuses"].items()}), file=sys.stderr)
' <<< "$report" >> "$out"
  done
done
