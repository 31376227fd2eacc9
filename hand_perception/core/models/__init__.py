"""MediaPipe Hands' pretrained palm-detection and hand-landmark models on ONNX Runtime.

Set-up (once, needs the package index): ``python -m hand_perception.core.models.prepare``
downloads the TFLite models, converts them to ONNX (``tflite_to_onnx``) and verifies them.
At run time ``PalmDetector`` and ``HandLandmarker`` load the prepared ONNX files found by
``runtime.resolve_model_dir``; ``roi`` turns palms or previous landmarks into hand ROIs.
Submodules are imported explicitly (``from hand_perception.core.models.palm_detector import
PalmDetector``) so ``prepare`` does not need OpenCV and runtime code does not need ``onnx``.
"""
