#!/usr/bin/env bash
# The whole test suite, setting up first when needed (so it passes alone on a fresh clone).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh test/core -k lifting`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
VENV="${HAND_PERCEPTION_VENV:-$ROOT/.venv}"
# DDS on loopback + shared memory, on a domain of this run's own (test/conftest.py enforces it too).
unset ROS_DOMAIN_ID
# shellcheck source=ros_env.sh
. "$ROOT/scripts/ros_env.sh"
cd "$ROOT"
# Killed DDS processes (crashes, kill -9) leave their shared-memory segments in /dev/shm, i.e. RAM;
# enough of them stall the machine. Fast DDS' own tool removes those whose process is gone.
FASTDDS_TOOL="$VENV/tools/fastdds/fastdds.py"
if [ -f "$FASTDDS_TOOL" ]; then
  "$VENV/bin/python" "$FASTDDS_TOOL" shm clean 2>&1 | sed -n 's/^\([0-9]* zombie segments cleaned\)/[test] \1/p' >&2 || true
fi
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE" >&2
exec "$VENV/bin/python" -m pytest "$@"
