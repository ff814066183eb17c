#!/usr/bin/env bash
# Installs what Herald needs on a fresh Debian/Ubuntu machine (idempotent), then builds.
#   - Debian packages: hiredis (build), redis-server (relay + tests), PHP + Laravel (interop tests)
#   - a git-ignored virtualenv (.venv) with the Python clients used by the interop tests
# Usage: scripts/setup.sh [--no-build] [--tests]   (--tests also builds the test targets)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pkg-config libhiredis-dev redis-server php-cli php-laravel-framework php-redis php-predis php-mbstring php-xml)
# --tests: headless Chromium and its driver for the QRLogin browser test (Tests/Interop/test_qrlogin.py);
# redis-sentinel for the Sentinel failover tests (Tests/HeraldRedisTests/SentinelTests.swift).
for arg in "$@"; do
  [ "$arg" = "--tests" ] && APT_PACKAGES+=(chromium chromium-driver redis-sentinel openssl)
done

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts redis-server as a service on install; Herald's scripts and tests run their own.

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import socketio, redis, pytest' 2>/dev/null || [ Tests/Interop/requirements.txt -nt .venv/.installed ]; then
  echo "==> installing Python test clients into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
  touch .venv/.installed
fi

if [ ! -x .venv-sio4/bin/python ]; then
  echo "==> creating .venv-sio4 (socket.io 2.x client for Engine.IO 3 tests)"
  python3 -m venv .venv-sio4
fi
if ! .venv-sio4/bin/python -c 'import socketio' 2>/dev/null || [ Tests/Interop/requirements-sio4.txt -nt .venv-sio4/.installed ]; then
  echo "==> installing python-socketio 4.x into .venv-sio4"
  .venv-sio4/bin/pip install -q --disable-pip-version-check -r Tests/Interop/requirements-sio4.txt
  touch .venv-sio4/.installed
fi

build=1; tests=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --tests) tests=1 ;;
  esac
done
if [ "$build" = 1 ]; then
  if [ "$tests" = 1 ]; then
    echo "==> swift build --build-tests"
    swift build --build-tests
  else
    echo "==> swift build"
    swift build
  fi
fi
