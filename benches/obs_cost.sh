#!/usr/bin/env bash
# Instruction counts of the observability cost driver with the observability
# hooks compiled in (switched off at run time) and compiled out.
# Needs valgrind. Usage: benches/obs_cost.sh
# OBS_COST_DIR=dir keeps the two builds and the callgrind files there (for
# callgrind_annotate, and so that a re-run rebuilds only what changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${OBS_COST_DIR:-}" ]; then
    out=$OBS_COST_DIR
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
build() {
    CARGO_TARGET_DIR="$out/t-$1" cargo build -q --release -p gmp-benches --bin obs_cost "${@:2}"
}
build on
build off --features without-observability
# Under valgrind the threads run one at a time and which M runs which
# goroutine depends on timing, so a workload's total moves by a few percent
# from run to run: take the median of OBS_COST_RUNS runs (default 5).
runs=${OBS_COST_RUNS:-5}
echo "median of $runs callgrind runs (instructions, all threads)"
echo
echo "| workload | hooks off at run time | compiled out | overhead | range on / off |"
echo "|---|---|---|---|---|"
for w in spawn yield pp; do
    count() {
        for i in $(seq "$runs"); do
            valgrind --tool=callgrind --callgrind-out-file="$out/cg.$w.$1.$i" "$out/t-$1/release/obs_cost" "$w" 2>&1 |
                awk '/Collected/ {print $4}'
        done | sort -n | tr '\n' ' '
    }
    on=$(count on)
    off=$(count off)
    awk -v w="$w" -v on="$on" -v off="$off" 'BEGIN {
        n = split(on, a, " "); split(off, b, " ");
        m = int((n + 1) / 2);
        printf "| %s | %d Ir | %d Ir | %+.1f%% | %d..%d / %d..%d |\n", w, a[m], b[m], (a[m] - b[m]) / b[m] * 100, a[1], a[n], b[1], b[n]
    }'
done
