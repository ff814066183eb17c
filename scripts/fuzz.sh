#!/usr/bin/env bash
# Coverage-guided fuzzing of Herald's parsers with libFuzzer (issue #7). See FUZZING.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   build, then fuzz each target (default 60 s,
#                                                      every target) and print a summary table
#   scripts/fuzz.sh --replay [TARGET...]               build, then run the committed corpus and
#                                                      every saved crash once (no fuzzing)
#   scripts/fuzz.sh --list                             the targets
#
# Environment:
#   FUZZ_CONFIGURATION=release|debug   build configuration (default release: several times more
#                                      executions per second; debug adds `assert`s)
#   FUZZ_SANITIZERS=fuzzer,address     what `-sanitize=` gets (libFuzzer + AddressSanitizer)
#   FUZZ_JOBS=1                        targets fuzzed at the same time (each uses one core)
#
# The fuzz targets are the nested package `Fuzz/` (its own Package.swift, depending on this one
# by path), built into `.build-fuzz` so `swift build` of the main package is not disturbed.
# Inputs that find new coverage go to `Fuzz/Work/<target>` (git-ignored); the committed seeds in
# `Fuzz/Corpus/<target>` are only read. A crash, sanitizer report, timeout or out-of-memory is
# saved as `Fuzz/Crashes/<target>-{crash,timeout,oom,leak}-<sha1>` (git-ignored) and makes the
# script exit 1. To reproduce one: `.build-fuzz/release/<target> Fuzz/Crashes/<file>`.
#
# Not part of CI: a useful run is minutes per target. Run it before a release and after
# changing a parser, e.g. `scripts/fuzz.sh 300`, or `scripts/fuzz.sh 60 FuzzJSON` while working.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

TARGETS=(
    FuzzJSON
    FuzzEngineIOv4
    FuzzEngineIOv3
    FuzzSocketIO
    FuzzWebSocketFrame
    FuzzPusherMessage
    FuzzPusherChannelName
    FuzzPusherHTTPAPI
    FuzzLaravelPayload
    FuzzRESP
)

# Longest input per target: a little over what the parser meets in practice (control frames,
# small payloads), long enough to cross every length boundary the code has (126-byte frame
# headers, the 123-byte close reason, 200-byte event names, the 10-digit length prefixes).
max_len() {
    case "$1" in
        FuzzPusherChannelName) echo 512 ;;
        FuzzSocketIO) echo 2048 ;;
        FuzzWebSocketFrame) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

CONFIGURATION=${FUZZ_CONFIGURATION:-release}
SANITIZERS=${FUZZ_SANITIZERS:-fuzzer,address}
JOBS=${FUZZ_JOBS:-1}
SCRATCH="$ROOT/.build-fuzz"
BIN="$SCRATCH/$CONFIGURATION"
CRASHES="$ROOT/Fuzz/Crashes"
WORK="$ROOT/Fuzz/Work"

MODE=fuzz
SECONDS_PER_TARGET=60
case "${1:-}" in
    --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    --replay) MODE=replay; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    '') ;;
    *[!0-9]*) ;;
    *) SECONDS_PER_TARGET=$1; shift ;;
esac
if [ $# -gt 0 ]; then
    for target in "$@"; do
        if ! printf '%s\n' "${TARGETS[@]}" | grep -qx "$target"; then
            echo "fuzz.sh: unknown target '$target' (see --list)" >&2
            exit 2
        fi
    done
    TARGETS=("$@")
fi

echo "==> building the fuzz targets ($CONFIGURATION, -sanitize=$SANITIZERS)"
mkdir -p "$SCRATCH"
BUILD_LOG="$SCRATCH/fuzz-build.log"
# -parse-as-library: libFuzzer supplies main(); each target only defines LLVMFuzzerTestOneInput.
if ! swift build --package-path Fuzz --scratch-path "$SCRATCH" -c "$CONFIGURATION" \
    -Xswiftc "-sanitize=$SANITIZERS" -Xswiftc -parse-as-library >"$BUILD_LOG" 2>&1; then
    grep -E "error:" "$BUILD_LOG" | head -20 >&2 || tail -30 "$BUILD_LOG" >&2
    echo "fuzz.sh: build failed (full log: $BUILD_LOG)" >&2
    exit 2
fi

mkdir -p "$CRASHES" "$WORK"
# Swift's crash backtracer does not get along with AddressSanitizer (it reports the unwinder
# itself); libFuzzer prints the stack that matters.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}

if [ "$MODE" = replay ]; then
    status=0
    for target in "${TARGETS[@]}"; do
        shopt -s nullglob
        saved=("$CRASHES/$target"-*)
        shopt -u nullglob
        log="$WORK/$target.replay.log"
        # A directory is read as a corpus (-runs=0: run it once); files are run one by one.
        if "$BIN/$target" -runs=0 "$ROOT/Fuzz/Corpus/$target" >"$log" 2>&1 &&
            { [ ${#saved[@]} -eq 0 ] || "$BIN/$target" "${saved[@]}" >>"$log" 2>&1; }; then
            echo "ok      $target (${#saved[@]} saved crash file(s))"
        else
            echo "FAILED  $target (log: Fuzz/Work/$target.replay.log)"
            status=1
        fi
    done
    exit $status
fi

run_target() {
    local target=$1
    local dict="$ROOT/Fuzz/Dictionaries/$target.dict"
    local args=(
        -max_total_time="$SECONDS_PER_TARGET"
        -max_len="$(max_len "$target")"
        -timeout=10
        -rss_limit_mb=2048
        -print_final_stats=1
        -artifact_prefix="$CRASHES/$target-"
    )
    if [ -f "$dict" ]; then args+=(-dict="$dict"); fi
    mkdir -p "$WORK/$target"
    "$BIN/$target" "${args[@]}" "$WORK/$target" "$ROOT/Fuzz/Corpus/$target" >"$WORK/$target.log" 2>&1 || true
}

echo "==> fuzzing ${#TARGETS[@]} target(s), $SECONDS_PER_TARGET s each, $JOBS at a time; logs in Fuzz/Work/<target>.log"
marker="$WORK/.started"
touch "$marker"
sleep 1  # crash files must be newer than the marker
running=0
for target in "${TARGETS[@]}"; do
    run_target "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

status=0
printf '\n%-22s %12s %9s %10s %7s %8s  %s\n' target executions exec/s coverage features crashes finding
printf '%-22s %12s %9s %10s %7s %8s  %s\n' ---------------------- ------------ --------- ---------- ------- -------- -------
for target in "${TARGETS[@]}"; do
    log="$WORK/$target.log"
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    # The last status line: "#N  DONE  cov: C ft: F corp: …".
    status_line=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 || true)
    coverage=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    features=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
    crashes=$(find "$CRASHES" -maxdepth 1 -name "$target-*" -newer "$marker" | wc -l)
    finding=""
    if [ "$crashes" -gt 0 ]; then
        status=1
        finding=$(grep -m1 -E 'fuzz invariant violated|ERROR: (AddressSanitizer|libFuzzer)|Fatal error' "$log" | cut -c1-120 || true)
    fi
    if [ -z "$executions" ]; then executions=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status_line"); fi
    printf '%-22s %12s %9s %10s %7s %8s  %s\n' "$target" "${executions:-?}" "${speed:-?}" "${coverage:-?}" "${features:-?}" "$crashes" "$finding"
done
rm -f "$marker"

if [ "$status" -ne 0 ]; then
    echo
    echo "Crashes saved in Fuzz/Crashes/. Minimize one with"
    echo "  SWIFT_BACKTRACE=enable=no $BIN/<target> -minimize_crash=1 -runs=100000 -exact_artifact_path=min.bin Fuzz/Crashes/<file>"
    echo "then fix it and add it to Tests/HeraldProtocolsTests/FuzzRegressionTests.swift (FUZZING.md)."
fi
exit $status
