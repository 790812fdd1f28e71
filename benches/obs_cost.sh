#!/usr/bin/env bash
# Instruction counts of the issue-5 cost driver with the observability
# hooks compiled in (switched off at run time) and compiled out.
# Needs valgrind. Usage: benches/obs_cost.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT
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
