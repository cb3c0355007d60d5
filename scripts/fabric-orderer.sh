#!/usr/bin/env bash
# Starts the real Fabric orderer ($FABRIC_REF/bin/orderer, built by
# ../shared/tools/build-fabric.sh) in the background as orderer0 of the fixture
# channel `mychannel` (testdata/fabric/blocks/mychannel-etcdraft-genesis.block: one
# etcdraft consenter), TLS on with orderer0's certificate, the channel joined over
# the participation API, and waits until it is the channel's Raft leader.
# Prints the orderer's pid on stdout; its log is DIR/orderer.log.
#
#   scripts/fabric-orderer.sh DIR PORT ADMIN-PORT
# Clients then use: --orderer 127.0.0.1:PORT --channel mychannel
#   --tls-ca testdata/fabric/crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/tls/ca.crt
#   --msp-dir testdata/fabric/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
dir=$1 port=$2 admin=$3
ref=${FABRIC_REF:?set FABRIC_REF to a Fabric build (../shared/tools/build-fabric.sh)}
[ -x "$ref/bin/orderer" ] || { echo "$ref/bin/orderer: no Fabric orderer there" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
node=$repo/testdata/fabric/crypto/ordererOrganizations/example.com/orderers/orderer0.example.com
rm -rf "$dir" && mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Fabric's sample orderer.yaml with what differs from it as Fabric's env vars. Its
# operations listener would take port 8443: this one takes any free port.
env FABRIC_CFG_PATH="$ref/src/sampleconfig" FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-INFO}" \
  ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$port" \
  ORDERER_GENERAL_BOOTSTRAPMETHOD=none \
  ORDERER_GENERAL_LOCALMSPDIR="$node/msp" ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
  ORDERER_GENERAL_TLS_ENABLED=true ORDERER_GENERAL_TLS_CERTIFICATE="$node/tls/server.crt" \
  ORDERER_GENERAL_TLS_PRIVATEKEY="$node/tls/server.key" ORDERER_GENERAL_TLS_ROOTCAS="[$node/tls/ca.crt]" \
  ORDERER_FILELEDGER_LOCATION="$dir/ledger" ORDERER_CONSENSUS_WALDIR="$dir/etcdraft/wal" \
  ORDERER_CONSENSUS_SNAPDIR="$dir/etcdraft/snapshot" \
  ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 \
  ORDERER_ADMIN_LISTENADDRESS="127.0.0.1:$admin" ORDERER_ADMIN_TLS_ENABLED=false \
  ORDERER_CHANNELPARTICIPATION_ENABLED=true \
  "$ref/bin/orderer" > "$dir/orderer.log" 2>&1 &
pid=$!
wait_log() {
  for _ in $(seq 1 150); do
    grep -qs "$1" "$dir/orderer.log" && return 0
    kill -0 $pid 2>/dev/null || { echo "Fabric's orderer exited:" >&2; tail -20 "$dir/orderer.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "Fabric's orderer did not log '$1' in 30 s (log: $dir/orderer.log)" >&2
  kill $pid; exit 1
}
wait_log "Beginning to serve requests"
# osnadmin channel join, done by our CLI (the same request: tests/e2e/osnadmin.rs).
bin=${ORDERER_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/orderer}
"$bin" channel join --admin "127.0.0.1:$admin" \
  --config-block "$repo/testdata/fabric/blocks/mychannel-etcdraft-genesis.block" > "$dir/join.json"
wait_log "Raft leader changed: 0 -> 1 channel=mychannel"
echo $pid
