#!/usr/bin/env bash
# Builds the DocC documentation of the Herald and HeraldCore modules (their catalogs,
# Sources/*/*.docc, plus the `///` comments) with swift-docc-plugin, into .build/docs/.
#
#   scripts/docs.sh             # .build/docs/Herald.doccarchive, .build/docs/HeraldCore.doccarchive
#   scripts/docs.sh --strict    # fail on any documentation warning (docc --warnings-as-errors)
#   scripts/docs.sh --static    # also transform for static hosting (plain files, any web server);
#                               # HERALD_DOCS_BASE_PATH sets the hosting base path (default: none)
#
# Needs only the Swift toolchain (docc ships with it) and the package's own dependencies; the
# modules are built in debug first, sharing .build with `swift build`.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(HeraldCore Herald)
output=.build/docs
extra=()
for arg in "$@"; do
    case "$arg" in
        --strict) extra+=(--warnings-as-errors) ;;
        --static)
            extra+=(--transform-for-static-hosting)
            if [[ -n "${HERALD_DOCS_BASE_PATH:-}" ]]; then extra+=(--hosting-base-path "$HERALD_DOCS_BASE_PATH"); fi
            ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "docs.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$output"
start=$SECONDS
for target in "${targets[@]}"; do
    echo "== documentation for $target"
    swift package --disable-sandbox generate-documentation \
        --target "$target" \
        --output-path "$output/$target.doccarchive" \
        ${extra[@]+"${extra[@]}"}
done

echo
echo "Built in $((SECONDS - start)) s:"
for target in "${targets[@]}"; do
    echo "  $PWD/$output/$target.doccarchive"
done
echo "Preview one with: swift package --disable-sandbox preview-documentation --target Herald"
echo "(or open a --static build's index.html through any web server)."
