"""Read a PyTorch checkpoint (``torch.save``) into numpy arrays without torch and without running code.

Both of torch's file formats are read:

* zip (torch >= 1.6): ``<name>/data.pkl`` (the object, tensors as persistent references to
  storages), ``<name>/data/<key>`` (each storage's raw bytes), ``<name>/byteorder``;
* legacy (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five pickles in one stream
  (magic number, protocol version, system info, the object, the list of storage keys), then each
  storage as an int64 element count followed by its bytes.

The object pickle is read by a restricted unpickler: the only globals it resolves are the few a
tensor checkpoint needs (``collections.OrderedDict``, torch's tensor rebuild functions and typed
storage classes), each mapped to a function of this module that builds numpy arrays; any other
global (``os.system``, ``builtins.eval``, a model class ...) stops the read with a
:class:`CheckpointError` naming it, before anything is called. Tensors come back as C-contiguous
numpy arrays of their torch dtype (bfloat16 widened to float32). Standard library and numpy only.
"""
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np


class CheckpointError(ValueError):
    """A file that is not a readable tensor checkpoint; the message starts with the file."""


# torch typed storage class -> (numpy dtype, element size in bytes)
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"), "FloatStorage": np.dtype("<f4"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001


class _StorageType:
    """Stands for a torch storage class inside the pickle (only its dtype matters)."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """A storage: a flat numpy array of its elements (filled later for the legacy format)."""

    def __init__(self, stype: _StorageType, key: str, numel: int):
        self.stype, self.key, self.numel = stype, key, int(numel)
        self.array = None


class _Tensor:
    """A tensor whose storage may not be read yet (legacy format: storages follow the object)."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise CheckpointError("a tensor without a storage")
        self.args = (storage, offset, size, stride)

    def resolve(self):
        return _as_numpy(*self.args)


def _resolve(obj, depth=0):
    """``obj`` with every ``_Tensor`` replaced by its numpy array (containers rebuilt)."""
    if depth > 100:
        raise CheckpointError("nested too deeply")
    if isinstance(obj, _Tensor):
        return obj.resolve()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, depth + 1)
        return out
    if isinstance(obj, list):
        return [_resolve(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, depth + 1) for v in obj)
    return obj


def _as_numpy(storage, offset, size, stride):
    if storage.array is None:
        raise CheckpointError(f"storage '{storage.key}' was not found in the file")
    flat = storage.array
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    n = int(np.prod(size, dtype=np.int64)) if size else 1
    if n == 0:
        out = np.zeros(size, flat.dtype)
    else:
        last = int(offset) + sum((s - 1) * st for s, st in zip(size, stride))
        if offset < 0 or last >= flat.size or any(st < 0 for st in stride):
            raise CheckpointError(f"a tensor of shape {size} lies outside its storage of {flat.size} elements")
        item = flat.dtype.itemsize
        out = np.lib.stride_tricks.as_strided(flat[int(offset):], shape=size,
                                              strides=tuple(st * item for st in stride), writeable=False)
    if storage.stype.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return np.array(out, order="C", copy=True)  # keeps 0-d tensors 0-d


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


def _ordered_dict(*args):
    return OrderedDict(*args)


_SAFE_FUNCTIONS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
#: every global a checkpoint may name ("module.name")
SAFE_GLOBALS = tuple(sorted([f"{m}.{n}" for m, n in _SAFE_FUNCTIONS] + [f"torch.{n}" for n in STORAGE_DTYPES]))


def _safe_global(module, name):
    """A fresh object for an allowed global (a pickle's BUILD could set attributes on what it gets:
    it must never reach this module's own functions), None for any other."""
    fn = _SAFE_FUNCTIONS.get((module, name))
    if fn is not None:
        def call(*args):
            return fn(*args)
        return call
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ``SAFE_GLOBALS``; storages through ``persistent_load``."""

    def __init__(self, stream, path, legacy):
        pickle.Unpickler.__init__(self, stream)
        self.path, self.legacy = path, legacy
        self.storages = {}

    def find_class(self, module, name):
        target = _safe_global(module, name)
        if target is None:
            raise CheckpointError(f"{self.path}: refused to load the global '{module}.{name}': a weight checkpoint "
                                  f"holds only tensors, and unpickling this name could run code (the file is "
                                  f"not read any further)")
        return target

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"{self.path}: unknown persistent reference {str(pid)[:80]!r}")
        if len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise CheckpointError(f"{self.path}: malformed storage reference {str(pid)[:80]!r}")
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(stype, key, numel)
            if not self.legacy:
                st.array = self._read_zip_storage(st)
        if self.legacy and len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(f"{self.path}: storage views (legacy format) are not supported")
        return st


def _zip_reader(path, zf):
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pkl) != 1:
        raise CheckpointError(f"{path}: a zip file without exactly one 'data.pkl': not a torch checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
    if byteorder not in ("little", "big"):
        raise CheckpointError(f"{path}: unknown byte order {byteorder!r}")

    class ZipUnpickler(_RestrictedUnpickler):
        def _read_zip_storage(self, st):
            name = f"{prefix}data/{st.key}"
            try:
                raw = zf.read(name)
            except KeyError:
                raise CheckpointError(f"{path}: storage '{name}' is missing") from None
            dtype = st.stype.dtype.newbyteorder("<" if byteorder == "little" else ">")
            if len(raw) < st.numel * dtype.itemsize:
                raise CheckpointError(f"{path}: storage '{name}' holds {len(raw)} bytes, expected "
                                      f"{st.numel * dtype.itemsize}")
            return np.frombuffer(raw, dtype, count=st.numel).astype(dtype.newbyteorder("="))

    return ZipUnpickler(io.BytesIO(zf.read(pkl[0])), path, legacy=False)


def _plain_load(stream, path, what):
    """One of the legacy format's header pickles: plain values only (no global is resolved)."""
    unp = _RestrictedUnpickler(stream, path, legacy=True)
    try:
        return unp.load()
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: not a torch checkpoint (cannot read its {what}: {err})") from None


def _read_legacy(path, f):
    magic = _plain_load(f, path, "header")
    if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a torch checkpoint (neither a zip file nor torch's legacy format)")
    version = _plain_load(f, path, "protocol version")
    if version != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: unsupported torch legacy protocol version {version!r}")
    sys_info = _plain_load(f, path, "system info")
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    unp = _RestrictedUnpickler(f, path, legacy=True)
    obj = unp.load()
    keys = _plain_load(f, path, "storage keys")
    if not isinstance(keys, list):
        raise CheckpointError(f"{path}: malformed storage key list")
    order = "<" if little else ">"
    for key in keys:
        st = unp.storages.get(str(key))
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: truncated (storage '{key}' missing)")
        numel = struct.unpack(order + "q", head)[0]
        if st is None:
            raise CheckpointError(f"{path}: storage '{key}' is not referred to by any tensor")
        dtype = st.stype.dtype.newbyteorder(order)
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize or numel < st.numel:
            raise CheckpointError(f"{path}: truncated storage '{key}'")
        st.array = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    return unp, obj


def load_torch_checkpoint(path):
    """The object ``torch.save`` wrote to ``path``, tensors as numpy arrays (see the module docstring).

    Raises :class:`CheckpointError` (one line naming the file) for a file that is not a torch
    checkpoint, is truncated, or names any global outside the tensor-checkpoint set."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror or err})") from None
    with f:
        if zipfile.is_zipfile(f):
            f.seek(0)
            try:
                zf = zipfile.ZipFile(f)
            except zipfile.BadZipFile as err:
                raise CheckpointError(f"{path}: damaged zip file ({err})") from None
            with zf:
                unp = _zip_reader(path, zf)
                return _load_main(unp, path)
        f.seek(0)
        start = f.read(512)
        f.seek(0)
        if len(start) >= 262 and start[257:262] == b"ustar":
            raise CheckpointError(f"{path}: a tar-format checkpoint of torch < 0.4 is not supported; re-save it "
                                  f"with a newer torch")
        try:
            return _resolve(_read_legacy(path, f)[1])
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None


def _load_main(unp, path):
    try:
        return _resolve(unp.load())
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
