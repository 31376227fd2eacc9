# Source this file: keeps DDS on this machine for dev runs and tests.
#   - ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: discovery never leaves the host.
#   - FASTDDS_DEFAULT_PROFILES_FILE: loopback-only UDP + a 64 MiB shared-memory segment, so
#     640x480 images are carried without loss (config/fastdds_localhost.xml says why).
#   - ROS_DOMAIN_ID: a per-run domain unless one is already chosen, so parallel runs on one
#     machine (two test suites, a demo beside a test) never see each other's topics.
# Values already set in the environment win, except the discovery range, which is forced:
# a dev run that talks to other machines must opt out deliberately (HAND_PERCEPTION_ALLOW_NETWORK=1).
_hp_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ "${HAND_PERCEPTION_ALLOW_NETWORK:-0}" != "1" ]; then
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_hp_root/config/fastdds_localhost.xml}"
fi
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}"
unset _hp_root
