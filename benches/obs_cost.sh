#!/usr/bin/env bash
# Instruction counts of the issue-5 cost driver with the observability
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
echo "| workload | hooks off at run time | compiled out | overhead |"
echo "|---|---|---|---|"
for w in spawn yield pp; do
    count() {
        valgrind --tool=callgrind --callgrind-out-file="$out/cg.$w.$1" "$out/t-$1/release/obs_cost" "$w" 2>&1 |
            awk '/Collected/ {print $4}'
    }
    on=$(count on)
    off=$(count off)
    awk -v w="$w" -v on="$on" -v off="$off" \
        'BEGIN { printf "| %s | %d Ir | %d Ir | %+.1f%% |\n", w, on, off, (on - off) / off * 100 }'
done
