"""A minimal writer of ONNX model files (protobuf wire format), so that no ``onnx`` package is needed.

The default embedding function runs all-MiniLM-L6-v2 as an ONNX graph that vectordb
builds itself from the model's safetensors weights (see
:mod:`vectordb.embedding_functions.minilm_graph`). Building it with the ``onnx``
package would add that package (and its protobuf and ml_dtypes dependencies, about
25 MB) to every install only to write one file; onnxruntime needs nothing but the
bytes. The ONNX format is a handful of protobuf messages, and this module writes the
few fields that graph uses, in field-number order and with unpacked repeated
scalars, as protobuf's own serializer does. ``tests/test_ef_default_onnx_graph.py``
checks that ``onnx.load`` reads the result back equal to the same graph built with
``onnx.helper``.

Field numbers are those of ``onnx/onnx.proto``. Nothing here reads a model: it only writes.
"""

from __future__ import annotations

import struct
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

FLOAT = 1
"""``TensorProto.FLOAT``."""
INT32 = 6
"""``TensorProto.INT32``."""
INT64 = 7
"""``TensorProto.INT64``."""
_DTYPES = {np.dtype("<f4"): FLOAT, np.dtype("<i4"): INT32, np.dtype("<i8"): INT64}

_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7

AttributeValue = Union[int, float, str, Sequence[int]]
Dim = Union[int, str]


def _varint(value: int) -> bytes:
    """A protobuf varint; a negative int64 is written as its 64-bit two's complement (10 bytes)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, value: Union[bytes, str]) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _key(field, 2) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def tensor(name: str, array: np.ndarray) -> bytes:
    """A ``TensorProto`` holding ``array`` (float32, int32 or int64) as little-endian raw data."""
    dtype = np.dtype(array.dtype).newbyteorder("<")
    if dtype not in _DTYPES:
        raise TypeError(f"tensor {name!r}: unsupported dtype {array.dtype}")
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    dims = b"".join(_int(1, int(d)) for d in array.shape)
    return dims + _int(2, _DTYPES[dtype]) + _bytes(8, name) + _bytes(9, data)


def attribute(name: str, value: AttributeValue) -> bytes:
    """An ``AttributeProto``: an int, a float, a string or a list of ints."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, list, tuple)):
        raise TypeError(f"attribute {name!r}: unsupported value {value!r}")
    if isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, _ATTR_INT)
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, _ATTR_STRING)
    return _bytes(1, name) + b"".join(_int(8, int(v)) for v in value) + _int(20, _ATTR_INTS)


def node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str,
    domain: str = "",
    **attributes: AttributeValue,
) -> bytes:
    """A ``NodeProto``; attributes are written sorted by name (as ``onnx.helper.make_node`` does)."""
    out = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
    out += _bytes(3, name) + _bytes(4, op_type)
    out += b"".join(_bytes(5, attribute(k, v)) for k, v in sorted(attributes.items()))
    if domain:
        out += _bytes(7, domain)
    return out


def value_info(name: str, elem_type: int, shape: Sequence[Dim]) -> bytes:
    """A ``ValueInfoProto`` for a tensor; a dimension is a size or a symbolic name."""
    dims = b"".join(
        _bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in shape
    )
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(
    *,
    name: str,
    nodes: Iterable[bytes],
    initializers: Iterable[bytes],
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    opsets: Sequence[Tuple[str, int]],
    ir_version: int,
    producer: str,
    doc: Optional[str] = None,
) -> bytes:
    """A serialized ``ModelProto`` holding one graph; ``opsets`` are ``(domain, version)`` pairs."""
    graph: List[bytes] = [_bytes(1, n) for n in nodes]
    graph.append(_bytes(2, name))
    graph.extend(_bytes(5, t) for t in initializers)
    graph.extend(_bytes(11, i) for i in inputs)
    graph.extend(_bytes(12, o) for o in outputs)
    out = [_int(1, ir_version), _bytes(2, producer)]
    if doc:
        out.append(_bytes(6, doc))
    out.append(_bytes(7, b"".join(graph)))
    out.extend(_bytes(8, _bytes(1, domain) + _int(2, version)) for domain, version in opsets)
    return b"".join(out)
