#!/usr/bin/env bash
# Create the benchmark peers' venv (MediaPipe's Python pipeline, mediapipe==0.10.14 with numpy<2)
# at .venv-peers, apart from the main venv. Idempotent: a second run only checks the stamp.
#   bash bench/setup_peers.sh            # create / bring up to date
#   PEERS_VENV=/path bash bench/setup_peers.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PEERS_VENV:-$ROOT/.venv-peers}"
REQS="$ROOT/bench/peers/requirements-mediapipe.txt"
PYTHON="${PEERS_PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
    && "$VENV/bin/python" -c "import mediapipe" 2>/dev/null; then
  echo "peers venv up to date: $VENV"
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/python" -c "import mediapipe, numpy; assert numpy.__version__.startswith('1.'); print('mediapipe', mediapipe.__version__, 'numpy', numpy.__version__)"
echo "$want" > "$STAMP"
echo "peers venv ready: $VENV"
