"""Write torch checkpoint files without torch, for the reader's edge cases (test helper).

The pickle is assembled opcode by opcode, the way ``torch.save`` lays it out (protocol 2; a
tensor is ``torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False,
OrderedDict())``); the real torch-written files of ``tests/data/once_for_all`` check the reader
itself, these files only let tests vary what is inside.
"""
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float16): "HalfStorage",
                 np.dtype(np.float64): "DoubleStorage", np.dtype(np.int64): "LongStorage",
                 np.dtype(np.int32): "IntStorage", np.dtype(np.uint8): "ByteStorage",
                 np.dtype(np.bool_): "BoolStorage"}


class View:
    """A tensor that is a strided view of a (possibly shared) flat storage ``key``."""

    def __init__(self, key, storage, offset, shape, stride, storage_name=None):
        self.key, self.storage = str(key), np.ascontiguousarray(storage).reshape(-1)
        self.offset, self.shape, self.stride = offset, tuple(shape), tuple(stride)
        self.storage_name = storage_name or STORAGE_NAMES[self.storage.dtype]


class Raw:
    """Pickle bytes put in place of a value as they are (e.g. a global a checkpoint must not name)."""

    def __init__(self, data: bytes):
        self.data = data


def op_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(n: int) -> bytes:
    return b"J" + struct.pack("<i", int(n))


def op_tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _contiguous_stride(shape):
    stride, acc = [], 1
    for s in reversed(shape):
        stride.append(acc)
        acc *= s
    return tuple(reversed(stride))


class _Writer:
    def __init__(self, legacy):
        self.legacy = legacy
        self.storages = OrderedDict()   # key -> (storage name, flat array)

    def tensor(self, v: View) -> bytes:
        self.storages.setdefault(v.key, (v.storage_name, v.storage))
        pid = [op_str("storage"), op_global("torch", v.storage_name), op_str(v.key), op_str("cpu"),
               op_int(v.storage.size)]
        if self.legacy:
            pid.append(b"N")
        args = op_tuple([op_tuple(pid) + b"Q", op_int(v.offset), op_tuple([op_int(s) for s in v.shape]),
                         op_tuple([op_int(s) for s in v.stride]), b"\x89",
                         op_global("collections", "OrderedDict") + b")R"])
        return op_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"

    def value(self, v) -> bytes:
        if isinstance(v, Raw):
            return v.data
        if isinstance(v, View):
            return self.tensor(v)
        if isinstance(v, np.ndarray):
            key = str(len(self.storages))
            return self.tensor(View(key, v, 0, v.shape, _contiguous_stride(v.shape)))
        if isinstance(v, dict):
            head = op_global("collections", "OrderedDict") + b")R" if isinstance(v, OrderedDict) else b"}"
            if not v:
                return head
            return head + b"(" + b"".join(op_str(k) + self.value(x) for k, x in v.items()) + b"u"
        if isinstance(v, bool):
            return b"\x88" if v else b"\x89"
        if isinstance(v, int):
            return op_int(v)
        if isinstance(v, str):
            return op_str(v)
        raise TypeError(type(v))

    def main_pickle(self, obj) -> bytes:
        return b"\x80\x02" + self.value(obj) + b"."


def write_zip(path, obj, prefix="archive"):
    """``obj`` ({str: dict / ndarray / View / int / str / Raw}) in torch's zip format."""
    w = _Writer(legacy=False)
    data = w.main_pickle(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data)
        z.writestr(f"{prefix}/byteorder", "little")
        for key, (_, arr) in w.storages.items():
            z.writestr(f"{prefix}/data/{key}", arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        z.writestr(f"{prefix}/version", "3\n")


def write_legacy(path, obj):
    """``obj`` in torch's legacy (pre-1.6) format."""
    w = _Writer(legacy=True)
    data = w.main_pickle(obj)
    with open(path, "wb") as f:
        for head in (0x1950a86a20f9469cfc6c, 1001,
                     {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            f.write(pickle.dumps(head, protocol=2))
        f.write(data)
        keys = list(w.storages)
        f.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            arr = w.storages[key][1]
            f.write(struct.pack("<q", arr.size))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())

