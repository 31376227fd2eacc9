"""Demonstration recording: one rosbag2/MCAP bag per episode, and export to LeRobot's format.

ROS-free: the recorder receives already-serialized CDR messages with topic, type and stamp.
"""
from hand_perception.core.recording.message_definitions import (  # noqa: F401
    MessageDefinition, MessageDefinitionSource)
from hand_perception.core.recording.recorder import (  # noqa: F401
    EpisodeMetadata, EpisodeRecorder, EpisodeSummary, RecorderOptions, read_episode_file)
