"""Convert a float TFLite model (the MediaPipe Hands palm and landmark models) to ONNX.

The .tflite flatbuffer is read with the generated schema classes of the ``tflite`` package; each
supported builtin op is mapped to ONNX nodes built with ``onnx.helper``. TFLite is NHWC while ONNX
convolutions are NCHW, so every rank-4 activation is kept NCHW inside the ONNX graph (weights are
transposed once at conversion time) and transposed back to NHWC only where TFLite semantics depend
on the memory order: the graph input, RESHAPE and FULLY_CONNECTED inputs. fp16 weights behind
DEQUANTIZE ops are folded into float32 initializers, so the ONNX model runs wholly in float32.
The batch dimension is made dynamic (``"batch"``) so several crops run in one session call.

Supported ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, PRELU, MAX_POOL_2D, PAD, RESHAPE,
RESIZE_BILINEAR, CONCATENATION, FULLY_CONNECTED, LOGISTIC, MEAN, DEQUANTIZE (fp16 constants).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

_LOG = logging.getLogger(__name__)

OPSET = 17
_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
             tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64}


class ConversionError(ValueError):
    """The TFLite model uses something this converter does not handle."""


def list_ops(model_bytes: bytes) -> Dict[str, int]:
    """Count the builtin ops of subgraph 0 of a .tflite model, e.g. ``{"CONV_2D": 35, ...}``."""
    model = tflite.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    counts: Dict[str, int] = {}
    for i in range(graph.OperatorsLength()):
        name = _OP_NAMES.get(_opcode(model, graph.Operators(i)), "?")
        counts[name] = counts.get(name, 0) + 1
    return counts


def _opcode(model: "tflite.Model", op: "tflite.Operator") -> int:
    code = model.OperatorCodes(op.OpcodeIndex())
    # Old files store the code in the deprecated int8 field; new ones in the int32 field.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def _options(op: "tflite.Operator", cls: type):
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _same_pads(in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
               dilation: Sequence[int]) -> List[int]:
    """ONNX ``pads`` (top, left, bottom, right) reproducing TF SAME padding (extra at the end)."""
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


class _Converter:
    """One conversion of subgraph 0; builds ``self.nodes`` and ``self.inits``."""

    def __init__(self, model_bytes: bytes) -> None:
        self.data = model_bytes
        self.model = tflite.Model.GetRootAs(model_bytes, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"expected 1 subgraph, got {self.model.SubgraphsLength()}")
        self.graph = self.model.Subgraphs(0)
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self.consts: Dict[int, np.ndarray] = {}
        self._uid = 0
        self.handlers: Dict[str, Callable] = {
            "CONV_2D": self._conv, "DEPTHWISE_CONV_2D": self._depthwise, "ADD": self._add,
            "PRELU": self._prelu, "MAX_POOL_2D": self._maxpool, "PAD": self._pad,
            "RESHAPE": self._reshape, "RESIZE_BILINEAR": self._resize,
            "CONCATENATION": self._concat, "FULLY_CONNECTED": self._fully_connected,
            "LOGISTIC": self._logistic, "MEAN": self._mean, "DEQUANTIZE": self._dequantize,
        }

    # -- tensors -------------------------------------------------------------------------------
    def shape(self, idx: int) -> List[int]:
        return [int(v) for v in self.graph.Tensors(idx).ShapeAsNumpy()]

    def name(self, idx: int) -> str:
        return f"t{idx}"

    def tmp(self, hint: str) -> str:
        self._uid += 1
        return f"{hint}_{self._uid}"

    def const(self, idx: int) -> Optional[np.ndarray]:
        """Constant value of tensor ``idx`` (weights), or None when it is an activation."""
        if idx in self.consts:
            return self.consts[idx]
        tensor = self.graph.Tensors(idx)
        buf = self.model.Buffers(tensor.Buffer())
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = np.frombuffer(self.data, np.uint8, buf.Size(), buf.Offset())
        elif buf.DataLength() > 0:
            raw = buf.DataAsNumpy()
        else:
            return None
        if tensor.Type() not in _NP_TYPES:
            raise ConversionError(f"tensor {tensor.Name()!r}: unsupported type {tensor.Type()}")
        value = raw.view(_NP_TYPES[tensor.Type()]).reshape(self.shape(idx))
        self.consts[idx] = value
        return value

    def weight(self, idx: int, hint: str) -> np.ndarray:
        value = self.const(idx)
        if value is None:
            raise ConversionError(f"{hint}: tensor {idx} must be constant")
        return value

    def add_init(self, value: np.ndarray, hint: str) -> str:
        name = self.tmp(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op_type: str, inputs: List[str], outputs: List[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=self.tmp(op_type),
                                           **attrs))

    def activation(self, fused: int, pre: str, out: str) -> None:
        """Apply a TFLite fused activation from tensor ``pre`` to ``out``."""
        act = tflite.ActivationFunctionType
        if fused == act.NONE:
            self.node("Identity", [pre], [out])
        elif fused == act.RELU:
            self.node("Relu", [pre], [out])
        elif fused in (act.RELU6, act.RELU_N1_TO_1):
            low, high = (0.0, 6.0) if fused == act.RELU6 else (-1.0, 1.0)
            self.node("Clip", [pre, self.add_init(np.float32(low), "lo"),
                               self.add_init(np.float32(high), "hi")], [out])
        elif fused == act.TANH:
            self.node("Tanh", [pre], [out])
        else:
            raise ConversionError(f"unsupported fused activation {fused}")

    def nhwc_const(self, value: np.ndarray, rank_of_other: int) -> np.ndarray:
        """Re-lay a constant operand broadcast against an NCHW activation of the given rank."""
        if rank_of_other != 4:
            return value
        if value.ndim == 4:
            return value.transpose(_NHWC_TO_NCHW)
        if value.ndim in (1, 2, 3):  # broadcasts against (..., C): channels become axis 1
            chans = value.reshape(-1) if value.size == value.shape[-1] else None
            if chans is None:
                raise ConversionError(f"cannot re-lay constant of shape {value.shape}")
            return chans.reshape(-1, 1, 1)
        return value

    # -- ops -----------------------------------------------------------------------------------
    def _conv_common(self, op, weight: np.ndarray, opts, group: int) -> None:
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        in_hw = self.shape(ins[0])[1:3]
        kernel = list(weight.shape[2:])
        stride = [opts.StrideH(), opts.StrideW()]
        dilation = [opts.DilationHFactor(), opts.DilationWFactor()]
        pads = (_same_pads(in_hw, kernel, stride, dilation)
                if opts.Padding() == tflite.Padding.SAME else [0, 0, 0, 0])
        inputs = [self.name(ins[0]), self.add_init(weight.astype(np.float32), "w")]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.add_init(self.weight(ins[2], "bias").astype(np.float32), "b"))
        pre = self.tmp("conv")
        self.node("Conv", inputs, [pre], kernel_shape=kernel, strides=stride,
                  dilations=dilation, pads=pads, group=group)
        self.activation(opts.FusedActivationFunction(), pre, self.name(out))

    def _conv(self, op) -> None:
        opts = _options(op, tflite.Conv2DOptions)
        weight = self.weight(op.InputsAsNumpy()[1], "conv weight")  # (O, H, W, I)
        groups = self.shape(op.InputsAsNumpy()[0])[3] // weight.shape[3]
        self._conv_common(op, weight.transpose(0, 3, 1, 2), opts, groups)

    def _depthwise(self, op) -> None:
        opts = _options(op, tflite.DepthwiseConv2DOptions)
        weight = self.weight(op.InputsAsNumpy()[1], "depthwise weight")  # (1, H, W, C*M)
        chans = self.shape(op.InputsAsNumpy()[0])[3]
        self._conv_common(op, weight.transpose(3, 0, 1, 2), opts, chans)

    def _binary_inputs(self, op) -> List[str]:
        ins = op.InputsAsNumpy()
        ranks = [len(self.shape(i)) for i in ins]
        names = []
        for k, idx in enumerate(ins):
            value = self.const(idx)
            if value is None:
                names.append(self.name(idx))
            else:
                other = ranks[1 - k]
                names.append(self.add_init(
                    self.nhwc_const(value.astype(np.float32), other), "c"))
        return names

    def _add(self, op) -> None:
        opts = _options(op, tflite.AddOptions)
        pre = self.tmp("add")
        self.node("Add", self._binary_inputs(op), [pre])
        self.activation(opts.FusedActivationFunction(), pre, self.name(op.OutputsAsNumpy()[0]))

    def _prelu(self, op) -> None:
        ins = op.InputsAsNumpy()
        x, out = self.name(ins[0]), self.name(op.OutputsAsNumpy()[0])
        alpha = self.weight(ins[1], "prelu alpha").astype(np.float32)
        shape = self.shape(ins[0])
        if len(shape) != 4 or alpha.size != shape[-1]:  # not one slope per channel
            alpha = self.nhwc_const(alpha, len(shape))
            self.node("PRelu", [x, self.add_init(alpha, "alpha")], [out])
            return
        # PRelu(x) = relu(x) (1 - a) + x a, the two products as 1x1 depthwise convolutions.
        # ONNX Runtime's CPU PRelu broadcasts a per-channel slope slowly and is not in its
        # blocked (NCHWc) conv layout: its profiler put PRelu at 5.7 of the palm detector's
        # 16 ms, plus 2.4 ms of layout reorders around it.
        slope = alpha.reshape(-1, 1, 1, 1)
        channels = slope.shape[0]
        relu, positive, linear = self.tmp("relu"), self.tmp("pos"), self.tmp("lin")
        self.node("Relu", [x], [relu])
        self.node("Conv", [relu, self.add_init(1.0 - slope, "w")], [positive], group=channels,
                  kernel_shape=[1, 1])
        self.node("Conv", [x, self.add_init(slope, "w")], [linear], group=channels,
                  kernel_shape=[1, 1])
        self.node("Add", [positive, linear], [out])

    def _maxpool(self, op) -> None:
        opts = _options(op, tflite.Pool2DOptions)
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        kernel = [opts.FilterHeight(), opts.FilterWidth()]
        stride = [opts.StrideH(), opts.StrideW()]
        pads = (_same_pads(self.shape(ins[0])[1:3], kernel, stride, [1, 1])
                if opts.Padding() == tflite.Padding.SAME else [0, 0, 0, 0])
        pre = self.tmp("pool")
        # TF SAME max-pooling ignores padded cells, as ONNX MaxPool does with explicit pads.
        self.node("MaxPool", [self.name(ins[0])], [pre], kernel_shape=kernel, strides=stride,
                  pads=pads)
        self.activation(opts.FusedActivationFunction(), pre, self.name(out))

    def _pad(self, op) -> None:
        ins = op.InputsAsNumpy()
        paddings = self.weight(ins[1], "paddings").astype(np.int64)  # (rank, 2)
        if paddings.shape[0] == 4:
            paddings = paddings[list(_NHWC_TO_NCHW)]
        pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
        self.node("Pad", [self.name(ins[0]), self.add_init(pads, "pads")],
                  [self.name(op.OutputsAsNumpy()[0])], mode="constant")

    def _to_nhwc(self, idx: int) -> str:
        """Name of tensor ``idx`` in TFLite memory order (transposed if it is an NCHW 4-D)."""
        if len(self.shape(idx)) != 4:
            return self.name(idx)
        out = self.tmp("nhwc")
        self.node("Transpose", [self.name(idx)], [out], perm=list(_NCHW_TO_NHWC))
        return out

    def _reshape(self, op) -> None:
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        new_shape = np.array(self.shape(out), np.int64)
        new_shape[0] = 0  # 0 copies the (dynamic) batch dimension of the input
        target = self.name(out)
        if len(new_shape) == 4:
            target = self.tmp("reshaped")
        self.node("Reshape", [self._to_nhwc(ins[0]), self.add_init(new_shape, "shape")],
                  [target])
        if len(new_shape) == 4:
            self.node("Transpose", [target], [self.name(out)], perm=list(_NHWC_TO_NCHW))

    def _resize(self, op) -> None:
        opts = _options(op, tflite.ResizeBilinearOptions)
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        size = self.weight(ins[1], "resize size").astype(np.int64)
        if opts.AlignCorners():
            mode = "align_corners"
        elif opts.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        in_shape = self.shape(ins[0])
        scales = np.array([1, 1, size[0] / in_shape[1], size[1] / in_shape[2]], np.float32)
        self.node("Resize", [self.name(ins[0]), "", self.add_init(scales, "scales")],
                  [self.name(out)], mode="linear", coordinate_transformation_mode=mode)

    def _concat(self, op) -> None:
        opts = _options(op, tflite.ConcatenationOptions)
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        rank = len(self.shape(out))
        axis = opts.Axis() % rank
        if rank == 4:
            axis = _NHWC_TO_NCHW.index(axis)
        pre = self.tmp("concat")
        self.node("Concat", [self.name(i) for i in ins], [pre], axis=axis)
        self.activation(opts.FusedActivationFunction(), pre, self.name(out))

    def _fully_connected(self, op) -> None:
        opts = _options(op, tflite.FullyConnectedOptions)
        if opts.KeepNumDims():
            raise ConversionError("FULLY_CONNECTED with keep_num_dims is not supported")
        ins, out = op.InputsAsNumpy(), op.OutputsAsNumpy()[0]
        weight = self.weight(ins[1], "fc weight").astype(np.float32)  # (O, I)
        flat = self.tmp("flat")
        self.node("Reshape", [self._to_nhwc(ins[0]),
                              self.add_init(np.array([-1, weight.shape[1]], np.int64), "shape")],
                  [flat])
        inputs = [flat, self.add_init(weight, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.add_init(self.weight(ins[2], "fc bias").astype(np.float32), "b"))
        pre = self.tmp("fc")
        self.node("Gemm", inputs, [pre], transB=1)
        self.activation(opts.FusedActivationFunction(), pre, self.name(out))

    def _logistic(self, op) -> None:
        self.node("Sigmoid", [self.name(op.InputsAsNumpy()[0])],
                  [self.name(op.OutputsAsNumpy()[0])])

    def _mean(self, op) -> None:
        opts = _options(op, tflite.ReducerOptions)
        ins = op.InputsAsNumpy()
        rank = len(self.shape(ins[0]))
        axes = [int(a) % rank for a in np.atleast_1d(self.weight(ins[1], "mean axes"))]
        if rank == 4:
            axes = [_NHWC_TO_NCHW.index(a) for a in axes]
        if not opts.KeepDims() and rank == 4 and len(self.shape(op.OutputsAsNumpy()[0])) == 4:
            raise ConversionError("MEAN without keep_dims producing rank 4 is not supported")
        self.node("ReduceMean", [self.name(ins[0])], [self.name(op.OutputsAsNumpy()[0])],
                  axes=sorted(axes), keepdims=int(bool(opts.KeepDims())))

    def _dequantize(self, op) -> None:
        src, out = op.InputsAsNumpy()[0], op.OutputsAsNumpy()[0]
        value = self.const(src)
        if value is None or value.dtype != np.float16:
            raise ConversionError("DEQUANTIZE is only supported for constant fp16 weights")
        self.consts[out] = value.astype(np.float32)  # folded: no ONNX node

    # -- graph ---------------------------------------------------------------------------------
    def run(self, output_names: Optional[Sequence[str]], graph_name: str) -> onnx.ModelProto:
        graph = self.graph
        if graph.InputsLength() != 1:
            raise ConversionError(f"expected 1 input, got {graph.InputsLength()}")
        in_idx = graph.Inputs(0)
        in_shape = self.shape(in_idx)
        self.node("Transpose", ["input"], [self.name(in_idx)], perm=list(_NHWC_TO_NCHW))
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            op_name = _OP_NAMES.get(_opcode(self.model, op), "?")
            if op_name not in self.handlers:
                raise ConversionError(f"unsupported TFLite op {op_name} (operator {i})")
            self.handlers[op_name](op)
        outputs = []
        for k in range(graph.OutputsLength()):
            idx = graph.Outputs(k)
            name = output_names[k] if output_names else self.name(idx).replace("t", "output", 1)
            shape = ["batch"] + self.shape(idx)[1:]
            if len(shape) == 4:
                raise ConversionError("rank-4 graph outputs are not supported")
            self.node("Identity", [self.name(idx)], [name])
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                ["batch"] + in_shape[1:])]
        onnx_graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="hand_perception.tflite_to_onnx")
        model.ir_version = 8  # readable by onnxruntime releases from 1.14 on
        onnx.checker.check_model(model, full_check=True)
        return model


def convert(model_bytes: bytes, output_names: Optional[Sequence[str]] = None,
            graph_name: str = "model") -> onnx.ModelProto:
    """Convert a float .tflite model (bytes) to an ONNX model with a dynamic batch dimension.

    The ONNX input ``"input"`` keeps the TFLite NHWC layout, ``(batch, H, W, C)`` float32, so
    preprocessing is identical for both runtimes. ``output_names`` names the outputs in TFLite
    output order. Raises ``ConversionError`` for unsupported ops.
    """
    _LOG.info("converting TFLite graph %r, ops %s", graph_name, list_ops(model_bytes))
    return _Converter(model_bytes).run(output_names, graph_name)


def convert_file(src: Union[str, Path], dst: Union[str, Path],
                 output_names: Optional[Sequence[str]] = None) -> Path:
    """Convert the .tflite file ``src`` and save the ONNX model to ``dst``; returns ``dst``."""
    src, dst = Path(src), Path(dst)
    model = convert(src.read_bytes(), output_names, graph_name=src.stem)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(dst))
    _LOG.info("wrote %s (%d nodes)", dst, len(model.graph.node))
    return dst
