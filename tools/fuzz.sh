#!/usr/bin/env bash
# `make fuzz`: runs pivisor's fuzz targets (tools/fuzz) under libFuzzer.
#
#   tools/fuzz.sh SECONDS [TARGET...]     (default: every target)
#
# Needs a nightly toolchain and cargo-fuzz, which it installs with rustup
# and cargo if missing. Each target starts from the committed seed corpus
# (tools/fuzz/corpus/<target>, never written to) plus what earlier runs
# found (build/fuzz/corpus/<target>); crashes go to
# build/fuzz/artifacts/<target>/. The summary, executions and findings per
# target, is build/fuzz/summary.txt. `make test` replays the seed corpus on
# stable (tools/fuzz/tests/replay.rs); a crash found here belongs in the
# seed corpus once fixed.
set -euo pipefail
secs=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")/.."
say() { printf 'fuzz: %s\n' "$*" >&2; }

if ! rustup toolchain list | grep -q '^nightly'; then
    say "installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(mmio_decode vgic mailbox pl011 psci bundle vm_config host_dtb console virtio_blk virtio_net)
fi
out=build/fuzz
mkdir -p "$out"
summary="$out/summary.txt"
echo "# pivisor fuzzing, $(date -u '+%Y-%m-%d %H:%M UTC'), ${secs}s per target" > "$summary"
status=0
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
    say "$t for ${secs}s"
    log="$out/$t.log"
    if cargo +nightly fuzz run --fuzz-dir tools/fuzz --features libfuzzer "$t" \
        "$out/corpus/$t" "tools/fuzz/corpus/$t" -- \
        -max_total_time="$secs" -artifact_prefix="$out/artifacts/$t/" -print_final_stats=1 \
        > "$log" 2>&1; then
        result="no crash"
    else
        result="CRASH (see $log and $out/artifacts/$t/)"
        status=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf '%-12s %12s executions  %-10s corpus %5s  %s\n' "$t" "${runs:-?}" "${cov:-cov: ?}" \
        "$(ls "$out/corpus/$t" | wc -l)" "$result" | tee -a "$summary"
done
say "summary: $summary"
exit $status
