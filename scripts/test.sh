#!/usr/bin/env bash
# The whole test suite: set-up, one build of everything, Swift tests, then the interop tests
# (python-socketio, real Laravel, real redis-server). Nothing is skipped: a missing tool fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
echo "==> swift test"
swift test --skip-build
echo "==> interop tests (pytest)"
.venv/bin/python -m pytest -q Tests/Interop
echo "==> benchmark packages build (Benchmarks/Micro; run on demand, see BENCHMARKS.md)"
swift build --package-path Benchmarks/Micro --scratch-path .build-micro
echo "==> documentation (DocC)"
scripts/docs.sh
