#!/usr/bin/env bash
# Crash loop (a soak, not a CI test): N cycles (default 100) of
#   load over several Broadcast streams + two Deliver followers saving every block
#   they receive, kill -9 of the orderer at a random moment (sometimes during a config
#   update, sometimes during a component hot swap), restart on the same ledger,
# and after every cycle:
#   - the ledger reopened (restart until the port answers) within MAX_REOPEN_MS,
#   - `orderer deliver --start oldest --stop newest --expect <every follower file>`
#     verifies the whole ledger: block numbers 0, 1, 2, ... each once, data hashes,
#     the hash chain, every orderer signature, and every block any follower of any
#     cycle received is there with the same SHA-256 (byte for byte).
# One line per cycle, a summary at the end; exit status 1 on any violation.
#
#   scripts/crash-loop.sh [CYCLES]
#
# Needs curl (the operations API tells when the load's streams are open).
#
# Environment: ORDERER_BIN (default $CARGO_TARGET_DIR/release/orderer, built when
# missing), SWAP_WASM (the component hot-swapped in, default max-tx-size, built when
# missing), WORK (folder for the ledger and logs, default a new temporary one, kept),
# PORT (client port, default 17050; PORT+1 admin, PORT+2 operations), MAX_REOPEN_MS
# (default 5000), TEAR (every TEAR-th cycle a torn tail is written after the kill,
# default 5, 0: never), SEED (for $RANDOM, default the time).
set -uo pipefail

cycles=${1:-100}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${ORDERER_BIN:-$target/release/orderer}
# Built by the tests (tests/components) or by hand.
wasm=${SWAP_WASM:-$target/wasm-core/wasm32-wasip2/release/max_tx_size.wasm}
[ -f "$wasm" ] || wasm=${SWAP_WASM:-$target/wasm32-wasip2/release/max_tx_size.wasm}
port=${PORT:-17050}
max_reopen_ms=${MAX_REOPEN_MS:-5000}
tear=${TEAR:-5}
seed=${SEED:-$(date +%s)}
RANDOM=$seed

if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --release -p orderer --bin orderer) || exit 2
fi
if [ ! -f "$wasm" ]; then
    (cd "$root" && cargo build --release --target wasm32-wasip2 -p max-tx-size) || exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
wasm=$(cd "$(dirname "$wasm")" && pwd)/$(basename "$wasm")

work=${WORK:-$(mktemp -d /tmp/crash-loop.XXXXXX)}
mkdir -p "$work/followers" "$work/cycles"
data=$work/data
addr=127.0.0.1:$port
admin=127.0.0.1:$((port + 1))
ops=127.0.0.1:$((port + 2))
user=$data/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp
signer=$data/crypto/ordererOrganizations/example.com/users/Admin@example.com/msp:OrdererMSP
cd "$work" || exit 2 # no orderer.yaml from the caller's folder

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_ms() { sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"; }

orderer_pid=
# Starts the orderer on $data (the embedded dev default, as the README's first command,
# with Fabric's variables for the folder and ports) and waits until it listens and its
# port answers; sets $orderer_pid and $reopen_ms. Returns 1 if it did not come up.
start_orderer() {
    local out=$1 t0 deadline
    t0=$(now_ms)
    env -u FABRIC_CFG_PATH -u ORDERER_GENERAL_LOCALMSPDIR -u ORDERER_GENERAL_LOCALMSPID \
        -u ORDERER_LOG -u FABRIC_LOGGING_SPEC \
        ORDERER_FILELEDGER_LOCATION="$data" \
        ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$port" \
        ORDERER_ADMIN_LISTENADDRESS="$admin" ORDERER_OPERATIONS_LISTENADDRESS="$ops" \
        "$bin" start >"$out" 2>>"$work/orderer.log" &
    orderer_pid=$!
    deadline=$((t0 + 60000))
    until grep -q '^listening on' "$out" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$orderer_pid" 2>/dev/null || [ "$(now_ms)" -gt "$deadline" ]; then
            reopen_ms=$(($(now_ms) - t0))
            return 1
        fi
        sleep 0.01
    done
    reopen_ms=$(($(now_ms) - t0))
}

# Waits up to $2 seconds for process $1 (started here), then kills it.
reap() {
    local pid=$1 i
    for ((i = 0; i < $2 * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    { kill -9 "$pid" && wait "$pid"; } 2>/dev/null
}

echo "crash loop: $cycles cycles, seed $seed, ledger in $data, orderer $bin"
if ! start_orderer "$work/cycles/start.out"; then
    echo "the first start failed; see $work/orderer.log"
    exit 1
fi

# Compile the swapped-in component once (it lands in the component cache), so that a
# swap during a cycle takes milliseconds and is sometimes done before the kill.
"$bin" core load --admin "$admin" "$wasm" >"$work/cycles/warm-up-swap.out" 2>&1 \
    && "$bin" core rollback --admin "$admin" >>"$work/cycles/warm-up-swap.out" 2>&1

survived=0
violations=0
torn_total=0
reopens=()
for ((c = 1; c <= cycles; c++)); do
    dir=$work/cycles/$c
    mkdir -p "$dir"
    pids=()
    # Two followers: one from the tip, one from the next block committed.
    for start in newest next; do
        "$bin" deliver --orderer "$addr" --msp-dir "$user" --start "$start" --stop forever \
            --save "$work/followers/$c-$start.txt" >"$dir/follower-$start.out" 2>&1 &
        pids+=($!)
    done
    sleep 0.2
    # Load: six Broadcast streams in two clients, small and larger envelopes, paced
    # (--rate) so that it lasts about 3 s after signing.
    "$bin" bench --orderer "$addr" --msp-dir "$user" -n 15000 -s 300 -k 4 -f 0 --rate 5000 \
        >"$dir/load-1.out" 2>&1 &
    pids+=($!)
    "$bin" bench --orderer "$addr" --msp-dir "$user" -n 3000 -s 4000 -k 2 -f 0 --rate 1000 \
        >"$dir/load-2.out" 2>&1 &
    pids+=($!)
    # The kill comes at a random moment once all six Broadcast streams are open (the
    # operations API's gRPC counter; the clients sign every envelope before they
    # connect) and blocks are being cut.
    for ((i = 0; i < 800; i++)); do
        streams=$(curl -s "http://$ops/metrics" | awk '/^grpc_server_stream_requests_received\{method="Broadcast"/ {print $2}')
        [ "${streams:-0}" -ge 6 ] && [ -s "$work/followers/$c-next.txt" ] && break
        sleep 0.025
    done

    delay=$((RANDOM % 2500))
    event=$((RANDOM % 4))
    during=
    [ "$event" -eq 0 ] && during=" during a config update"
    [ "$event" -eq 1 ] && during=" during a hot swap"
    after=$((event < 2 ? RANDOM % 400 : 0)) # from the update or swap to the kill
    wait_ms $((delay > after ? delay - after : 0))
    case $event in
    0)
        "$bin" channel update --orderer "$addr" --msp-dir "$user" \
            --max-message-count $((RANDOM % 450 + 50)) --batch-timeout "$((RANDOM % 1500 + 100))ms" \
            --signer "$signer" >"$dir/update.out" 2>&1 &
        pids+=($!)
        ;;
    1)
        # Every start runs the built-in core, so this is a real swap each time.
        "$bin" core load --admin "$admin" "$wasm" >"$dir/swap.out" 2>&1 &
        pids+=($!)
        ;;
    esac
    if [ "$event" -eq 0 ] && [ $((RANDOM % 2)) -eq 0 ]; then
        # Half of the updates: the kill comes 0 to 30 ms after the update's SUCCESS,
        # while its config block is cut, signed and written.
        for ((i = 0; i < 400; i++)); do
            grep -q SUCCESS "$dir/update.out" 2>/dev/null && break
            sleep 0.005
        done
        after=$((RANDOM % 30))
        during+=" ($after ms after its SUCCESS)"
    fi
    wait_ms "$after"
    { kill -9 "$orderer_pid" && wait "$orderer_pid"; } 2>/dev/null
    for pid in "${pids[@]}"; do reap "$pid" 10; done
    if [ "$event" -eq 0 ]; then
        grep -q 'SUCCESS' "$dir/update.out" && during+=", accepted" || during+=", cut off"
    elif [ "$event" -eq 1 ]; then
        grep -q '"sha256"' "$dir/swap.out" && during+=", done" || during+=", cut off"
    fi

    # Every TEAR-th cycle also leaves what a kill in the middle of a write leaves (a
    # length prefix and part of a record after the last block, part of an index
    # record): the reopen must cut both and lose nothing.
    tore=0
    if [ "$tear" -gt 0 ] && [ $((c % tear)) -eq 0 ]; then
        last=$(ls "$data/chains/devchannel"/blockfile_* | tail -n 1)
        printf '\xa0\x9c\x01' >>"$last"
        head -c $((RANDOM % 2000 + 1)) /dev/urandom >>"$last"
        head -c $((RANDOM % 15 + 1)) /dev/urandom >>"$data/chains/devchannel/index"
        tore=1
        during+=", torn tail written"
    fi

    torn_before=$(grep -c 'truncating torn tail' "$work/orderer.log")
    problem=
    if ! start_orderer "$dir/orderer.out"; then
        problem="the orderer did not come back (see $work/orderer.log)"
    fi
    torn=$(($(grep -c 'truncating torn tail' "$work/orderer.log") - torn_before))
    torn_total=$((torn_total + torn))
    reopens+=("$reopen_ms")
    if [ -z "$problem" ] && [ "$tore" -eq 1 ] && [ "$torn" -eq 0 ]; then
        problem="the torn tail written after the kill was not cut on reopen"
    fi
    if [ -z "$problem" ] && [ "$reopen_ms" -gt "$max_reopen_ms" ]; then
        problem="reopen took $reopen_ms ms (limit $max_reopen_ms ms)"
    fi
    summary=
    if [ -z "$problem" ]; then
        expect=()
        for f in "$work"/followers/*.txt; do expect+=(--expect "$f"); done
        if "$bin" deliver --orderer "$addr" --msp-dir "$user" --start oldest --stop newest \
            "${expect[@]}" >"$dir/verify.out" 2>&1; then
            summary=$(tail -n 1 "$dir/verify.out")
        else
            problem="verification failed: $(grep -E 'FAILED|MISSING|DIFFERS|OUT OF SEQUENCE|TWICE|rror' "$dir/verify.out" | head -n 3 | tr '\n' ' ')(see $dir/verify.out)"
        fi
    fi
    received=$(cut -d' ' -f1 "$work/followers/$c"-*.txt 2>/dev/null | sort -u | wc -l)
    if [ -n "$problem" ]; then
        violations=$((violations + 1))
        echo "cycle $c/$cycles: killed $delay ms into the load$during; reopened in $reopen_ms ms; VIOLATION: $problem"
        if ! kill -0 "$orderer_pid" 2>/dev/null; then break; fi
    else
        survived=$((survived + 1))
        echo "cycle $c/$cycles: killed $delay ms into the load$during; reopened in $reopen_ms ms; torn tail cut: $torn; followers received $received blocks this cycle; $summary"
    fi
done
{ kill -9 "$orderer_pid" && wait "$orderer_pid"; } 2>/dev/null

sorted=$(printf '%s\n' "${reopens[@]}" | sort -n)
n=${#reopens[@]}
median=$(echo "$sorted" | sed -n "$(((n + 1) / 2))p")
max=$(echo "$sorted" | tail -n 1)
last=$(ls -t "$work"/cycles/*/verify.out 2>/dev/null | head -n 1)
echo "summary: $survived of $((c > cycles ? cycles : c)) cycles survived, $violations violation(s); reopen median $median ms, max $max ms (limit $max_reopen_ms ms); torn tails cut on reopen: $torn_total; last verification: $( [ -n "$last" ] && tail -n 1 "$last")"
echo "logs: $work"
[ "$violations" -eq 0 ]
