"""Tiny models - small hand-built ONNX graphs (no training) for fast loading and scoring tests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shadow.modelcard import THRESHOLD_METADATA

_OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


TINY_THRESHOLD = 0.5
"""Decision threshold every tiny model carries in its ``threshold`` metadata property."""


def build(kind: str = "columns", weight: float = 1.0) -> onnx.ModelProto:
    """``columns``, ``tensor``, ``wrong_shape``, ``failing`` or ``runaway`` (see
    write_tiny_model); each carries TINY_THRESHOLD in its metadata, as a model registered
    without --threshold must."""
    builders = {
        "columns": _columns,
        "tensor": _tensor,
        "wrong_shape": _wrong_shape,
        "failing": _failing,
        "runaway": _runaway,
    }
    if kind not in builders:
        raise ValueError(f"unknown tiny model kind {kind!r}; kinds: {', '.join(builders)}")
    model = builders[kind](weight)
    entry = model.metadata_props.add()
    entry.key, entry.value = THRESHOLD_METADATA, str(TINY_THRESHOLD)
    onnx.checker.check_model(model)
    return model


def _const(name: str, value: Any, dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _column(name: str, elem: int = TensorProto.FLOAT) -> Any:
    return helper.make_tensor_value_info(name, elem, ["N", 1])


def _columns(weight: float) -> onnx.ModelProto:
    """p = sigmoid(w * (0.01 amount + 3 device_risk) + mcc shift - 2); probabilities [N, 2]."""
    nodes = [
        helper.make_node(
            "LabelEncoder",
            ["merchant_category"],
            ["mcc_shift"],
            domain="ai.onnx.ml",
            keys_strings=["7995", "4829"],
            values_floats=[1.0, 0.5],
            default_float=0.0,
        ),
        helper.make_node("Mul", ["amount", "c_amount"], ["a"]),
        helper.make_node("Mul", ["device_risk", "c_device"], ["d"]),
        helper.make_node("Sum", ["a", "d", "mcc_shift", "c_bias"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Sub", ["one", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_columns",
        [
            _column("amount"),
            _column("device_risk"),
            _column("merchant_category", TensorProto.STRING),
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        [
            _const("c_amount", 0.01 * weight),
            _const("c_device", 3.0 * weight),
            _const("c_bias", -2.0),
            _const("one", 1.0),
        ],
    )
    return helper.make_model(graph, opset_imports=_OPSETS)


def _tensor(weight: float) -> onnx.ModelProto:
    """score = sigmoid(input @ w - 2) over [amount, device_risk, ip_risk]; score [N, 1]."""
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_tensor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        [_const("w", np.array([[0.01], [3.0], [2.0]]) * weight), _const("b", [-2.0])],
    )
    model = helper.make_model(graph, opset_imports=_OPSETS)
    helper.set_model_props(model, {"features": json.dumps(["amount", "device_risk", "ip_risk"])})
    return model


def _wrong_shape(weight: float) -> onnx.ModelProto:
    """One number whatever the batch size: the mean amount."""
    nodes = [
        helper.make_node("Mul", ["amount", "c"], ["scaled"]),
        helper.make_node("ReduceMean", ["scaled"], ["score"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_wrong_shape",
        [_column("amount")],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [])],
        [_const("c", weight)],
    )
    return helper.make_model(graph, opset_imports=_OPSETS)


def _failing(weight: float) -> onnx.ModelProto:
    """Gathers column 5 of a one-column input: valid graph, fails at run time."""
    nodes = [
        helper.make_node("Mul", ["amount", "c"], ["scaled"]),
        helper.make_node("Gather", ["scaled", "index"], ["score"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_failing",
        [_column("amount")],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        [_const("c", weight), _const("index", [5], np.int64)],
    )
    return helper.make_model(graph, opset_imports=_OPSETS)


def _runaway(weight: float) -> onnx.ModelProto:
    """p = sigmoid(w * 0.01 amount) after a Loop that runs max(amount) times: a small amount
    (its canary) scores in microseconds, amount = 1e12 would loop for weeks."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "step"], ["acc_out"]),
        ],
        "count",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
        ],
        [_const("step", 1.0)],
    )
    nodes = [
        helper.make_node("ReduceMax", ["amount"], ["most"], keepdims=0),
        helper.make_node("Cast", ["most"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "", "zero"], ["count"], body=body),
        helper.make_node("Mul", ["count", "zero"], ["nothing"]),  # ties the score to the loop
        helper.make_node("Mul", ["amount", "c"], ["a"]),
        helper.make_node("Add", ["a", "nothing"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_runaway",
        [_column("amount")],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        [_const("zero", 0.0), _const("c", 0.01 * weight)],
    )
    return helper.make_model(graph, opset_imports=_OPSETS)
