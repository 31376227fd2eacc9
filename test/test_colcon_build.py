"""`colcon build` of this package against a ROS 2 underlay (here the venv's PyPI ROS stands in for
/opt/ros), and the install space works on its own: executables in lib/hand_perception, launch and
config in share, messages and the Python package importable, a node graph runs from it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
PY_DIR = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def _tracked_files():
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files belong to the package")
    return [ROOT / name for name in listed.stdout.split("\0") if name]


@pytest.fixture(scope="module")
def install_space(tmp_path_factory):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed in this venv (requirements.txt has it)")
    workspace = tmp_path_factory.mktemp("ws")
    package = workspace / "src" / "hand_perception"
    for source in _tracked_files():
        if source.is_file():
            target = package / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    build = subprocess.run(
        [colcon, "build", "--packages-select", "hand_perception", "--cmake-args",
         "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return workspace / "install" / "hand_perception"


def test_install_space_layout(install_space):
    from hand_perception.ros.graph import available_executables

    lib = install_space / "lib" / "hand_perception"
    for executable in (*available_executables(), "graph_runner", "hand-perception"):
        assert os.access(lib / executable, os.X_OK), f"missing executable {executable}"
    share = install_space / "share" / "hand_perception"
    assert (share / "package.xml").is_file()
    for folder in ("launch", "config"):
        shipped = {p.relative_to(ROOT / folder) for p in (ROOT / folder).rglob("*") if p.is_file()}
        installed = {p.relative_to(share / folder) for p in (share / folder).rglob("*") if p.is_file()}
        assert shipped <= installed, f"not installed from {folder}/: {shipped - installed}"
    assert (install_space / "share" / "ament_index" / "resource_index" / "packages"
            / "hand_perception").is_file()


def test_install_space_runs_without_the_source_tree(install_space, tmp_path):
    site = install_space / PY_DIR
    env = dict(os.environ, PYTHONPATH=str(site), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               AMENT_PREFIX_PATH=f"{install_space}:{sys.prefix}")
    probe = subprocess.run(
        [sys.executable, "-c", "import hand_perception.core, hand_perception.msg, hand_perception.paths as p;"
         "print(hand_perception.core.__file__); print(p.share_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    core_file, share = probe.stdout.split()
    assert core_file.startswith(str(site)) and share == str(install_space / "share" / "hand_perception")
    sample = tmp_path / "frame.png"
    import cv2
    import numpy as np
    cv2.imwrite(str(sample), np.full((48, 64, 3), 120, np.uint8))
    run = subprocess.run(
        [str(install_space / "lib" / "hand_perception" / "graph_runner"), "--graph", "hand_perception",
         "--duration", "1.5", "--set", f"camera.source:={sample}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
