#!/usr/bin/env bash
# Set up the retargeting peers used by bench/bench_retargeting.py, in their own venv.
#
# dex-retargeting==0.5.0 (MIT) and dexi-rs==0.4.1 (MIT) are benchmark extras, never runtime
# dependencies of hand_perception: they go in .venv-retarget-peers (matplotlib, nlopt, torch, ...
# stay out of the main venv). Every package is pinned; torch is installed first from the local CPU
# wheel so nothing pulls a CUDA build. Idempotent: a venv that already holds the pins is left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RETARGET_PEERS_VENV:-$ROOT/.venv-retarget-peers}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

PINS=(
  numpy==2.4.6 PyYAML==6.0.3 pin==4.1.0 libpinocchio==4.1.0 eigenpy==3.13.0 coal==3.0.3
  libcoal==3.0.3 cmeel==0.62.0 cmeel-assimp==6.0.5 cmeel-boost==1.90.0
  cmeel-console-bridge==1.0.2.3 cmeel-octomap==1.10.0 cmeel-qhull==8.0.2.1
  cmeel-tinyxml2==11.0.0 cmeel-urdfdom==6.0.0 cmeel-zlib==1.3.2
  dexi-rs==0.4.1 dex-retargeting==0.5.0
  anytree==2.13.0 lxml==6.1.3 nlopt==2.11.0 pytransform3d==3.17.0 scipy==1.17.1
  matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1
  pillow==13.0.0 pyparsing==3.3.3 python-dateutil==4.0.0 packaging==26.3 six==1.17.0
)
TORCH_PINS=(torch==2.13.0 filelock==4.2.11 fsspec==2026.9.0 Jinja2==3.1.6 MarkupSafe==3.0.4
            mpmath==1.3.0 networkx==3.6.1 sympy==1.14.0 typing_extensions==4.16.0)

have_all() {  # every pin already installed?
  [ -x "$VENV/bin/python" ] || return 1
  local frozen
  frozen="$("$VENV/bin/python" -m pip freeze 2>/dev/null | tr '[:upper:]_' '[:lower:]-')"
  for pin in "${PINS[@]}" "${TORCH_PINS[@]}"; do
    pin="$(echo "$pin" | tr '[:upper:]_' '[:lower:]-')"
    if [ "$pin" = "torch==2.13.0" ]; then pin="torch==2.13.0+cpu"; fi
    grep -qxF "$pin" <<<"$frozen" || return 1
  done
}

if have_all; then
  echo "retargeting peers already installed in $VENV"
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  # torch first and alone, from the CPU wheel (an unpinned resolve would fetch CUDA builds).
  "$VENV/bin/python" -m pip install --quiet "${TORCH_PINS[@]}"
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
fi
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
import dex_retargeting.retargeting_config, dexi_rs, nlopt, pinocchio, torch  # noqa: F401 (imports)
print("retargeting peers ready:", ", ".join(f"{n}=={version(n)}" for n in
      ("dex-retargeting", "dexi-rs", "pin", "torch", "numpy")))
PY
