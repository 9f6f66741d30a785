#!/usr/bin/env bash
# The full run behind BENCHMARKS.md: three invocations of lanemap-bench, their reports kept
# under docs/bench/, and their Markdown joined (headings demoted, chart links rewritten) into
# docs/bench/body.md, which BENCHMARKS.md includes below its hand-written summary; and
# docs/bench/summary.md (scripts/summarize.py, needs python3), the table that summary quotes.
#
# Usage, from the repository root: crates/lanemap-bench/scripts/full-run.sh [REPS]
# The last full run (5 repetitions) took 13 minutes on two cores. Run it on an otherwise idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/../../.."
reps="${1:-3}"

cargo build --release -p lanemap-bench
bench="${CARGO_TARGET_DIR:-target}/release/lanemap-bench"

# Part 1: the conc-map-bench presets on a DRAM-sized table (2^21 keys), at 1 and 2 threads,
# with resize pauses while growing to 2^21 entries and memory at 2^21 entries.
"$bench" run --workload presets --dist uniform --keys 2097152 --threads 1,2 \
    --reps "$reps" --ops 1000000 --growth-inserts 2097152 --memory-entries 2097152 \
    --out docs/bench/dram

# Part 2: read-heavy with Zipfian hot keys on the same table.
"$bench" run --workload read-heavy --dist zipf --zipf 0.99 --keys 2097152 --threads 1,2 \
    --reps "$reps" --ops 1000000 --growth-inserts 0 --memory-entries 0 \
    --out docs/bench/dram-zipf

# Part 3: every workload (presets and read/write gradients) on a cache-resident table (2^16
# keys), at 1, 2 and 4 threads (4 = twice the cores: oversubscribed). Cache-resident
# operations are fast, so each trial runs 3M of them to last long enough to time well.
"$bench" run --workload all --dist uniform --keys cache --threads 1,2,4 \
    --reps "$reps" --ops 3000000 --growth-inserts 0 --memory-entries 0 \
    --out docs/bench/cache

body=docs/bench/body.md
: > "$body"
for part in dram dram-zipf cache; do
    # Demote headings by one level and point chart links at the part's folder.
    sed -e 's/^#/##/' -e "s#](\([^)/]*\.svg\))#](docs/bench/$part/\1)#g" \
        "docs/bench/$part/report.md" >> "$body"
    printf '\n' >> "$body"
done
# The cross-run summary: every block's best peer and lanemap's ratios to it, per repetition.
python3 crates/lanemap-bench/scripts/summarize.py docs/bench/dram docs/bench/dram-zipf docs/bench/cache \
    > docs/bench/summary.md.new
mv docs/bench/summary.md.new docs/bench/summary.md
echo "Wrote docs/bench/{dram,dram-zipf,cache}/, $body and docs/bench/summary.md"
