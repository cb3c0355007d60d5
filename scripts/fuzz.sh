#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the targets in fuzz/fuzz_targets:
#
#   scripts/fuzz.sh list               # the targets, one a line
#   scripts/fuzz.sh TARGET SECONDS     # run one for SECONDS (libFuzzer's -max_total_time)
#
# Installs what is missing (cargo-fuzz, the nightly toolchain), writes the seed corpus
# from the Fabric fixtures (fuzz/seeds.py) into fuzz/corpus/TARGET, builds and runs
# the target in one process, then prints the executions and the crashes found
# (fuzz/artifacts/TARGET; a crash stops the run). The log is fuzz/logs/TARGET.log.
#
# Environment: RUNS (also stop after this many executions), SANITIZER (cargo fuzz's
# -s, default none: the code under test is safe Rust, and ASan halves the speed),
# FUZZ_ARGS (more libFuzzer flags). The fuzz crate has its own workspace and target
# dir (fuzz/target); the core component inside it is built on stable
# (ORDERER_WASM_TOOLCHAIN), as nightly may have no wasm32-wasip2 to install.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$root/fuzz/Cargo.toml" | grep -v '^orderer-fuzz$')

case "${1:-}" in
list)
    echo "$targets"
    exit 0
    ;;
"" | -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
target=$1
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
grep -qx "$target" <<<"$targets" || { echo "unknown target $target; targets: $(echo $targets)" >&2; exit 2; }

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || nice -n 10 cargo +nightly install cargo-fuzz

cd "$root"
python3 fuzz/seeds.py "$target"
mkdir -p fuzz/logs "fuzz/artifacts/$target"
log=fuzz/logs/$target.log
before=$(ls "fuzz/artifacts/$target" | wc -l)
flags=(-max_total_time="$seconds" -print_final_stats=1)
[ -n "${RUNS:-}" ] && flags+=(-runs="$RUNS")
# shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
flags+=(${FUZZ_ARGS:-})

fuzz() {
    ORDERER_WASM_TOOLCHAIN=${ORDERER_WASM_TOOLCHAIN:-stable} nice -n 10 \
        cargo +nightly fuzz "$1" --fuzz-dir fuzz -s "${SANITIZER:-none}" "${@:2}"
}
fuzz build "$target" 2>&1
echo "fuzzing $target for ${seconds}s${RUNS:+ or $RUNS executions} (log: $log)"
started=$(date +%s)
status=0
fuzz run "$target" "fuzz/corpus/$target" -- "${flags[@]}" >"$log" 2>&1 || status=$?
elapsed=$(($(date +%s) - started))

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
executions=$(stat number_of_executed_units)
# libFuzzer's crash-, oom-, timeout- and leak- files are findings; slow-unit- files
# (an input over -report_slow_units seconds) are not.
new=$(ls -t "fuzz/artifacts/$target" | head -n $(($(ls "fuzz/artifacts/$target" | wc -l) - before)) |
    grep -E '^(crash|oom|timeout|leak)-' || true)
echo "$target: ${executions:-?} executions in ${elapsed}s ($(stat average_exec_per_sec) exec/s), corpus $(ls "fuzz/corpus/$target" | wc -l) inputs, peak RSS $(stat peak_rss_mb) MB"
if [ -n "$new" ]; then
    echo "crashes found: $(echo "$new" | wc -l)"
    for artifact in $new; do echo "  fuzz/artifacts/$target/$artifact"; done
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | sed 's/^/  /'
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "the run failed (exit status $status) without a crash artifact; see $log" >&2
    tail -20 "$log" >&2
    exit "$status"
fi
echo "crashes found: 0"
