"""ROS-free retargeting of 21 human hand keypoints onto dexterous robot hands (pinocchio).

Typical use::

    from hand_perception.core.retargeting import Retargeter, load_options, shipped_config
    retargeter = Retargeter(load_options(shipped_config("allegro", "right")))
    result = retargeter.process(keypoints)  # (21, 3) float m -> result.qpos (rad)

Offline datasets: ``hand_perception.core.retargeting.batched.BatchedRetargeter`` (torch, CPU or
CUDA; imported explicitly so the single-frame path never loads torch).
"""
from hand_perception.core.retargeting.bimanual import BimanualResult, BimanualRetargeter, \
    HandObservation
from hand_perception.core.retargeting.check import ConfigCheckResult, check_config
from hand_perception.core.retargeting.config import RetargetingOptions, load_options
from hand_perception.core.retargeting.resources import resolve_urdf, shipped_config, \
    shipped_configs
from hand_perception.core.retargeting.retargeter import Retargeter, RetargetingResult
from hand_perception.core.retargeting.scaling import HandSizeCalibrator, HandSizeOptions, \
    HandSizeResult
from hand_perception.core.retargeting.wrist_frame import WristFrameEstimator, \
    WristFrameOptions, WristFrameResult

__all__ = [
    "BimanualResult", "BimanualRetargeter", "ConfigCheckResult", "HandObservation",
    "HandSizeCalibrator", "HandSizeOptions", "HandSizeResult", "Retargeter",
    "RetargetingOptions", "RetargetingResult", "WristFrameEstimator", "WristFrameOptions",
    "WristFrameResult", "check_config", "load_options", "resolve_urdf", "shipped_config",
    "shipped_configs",
]
