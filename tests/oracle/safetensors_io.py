"""Minimal safetensors reader/writer (no `safetensors` package needed).

Format: 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes; offsets are relative to the data start.
Only the dtypes Galaxy exchanges are supported: F32, I32, I64 (plus F64 for
convenience when reading).
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}
_MAX_HEADER = 100 * 1024 * 1024  # refuse absurd headers instead of reading GBs


class SafetensorsError(ValueError):
    pass


def _dtype_name(arr):
    for name, dt in _DTYPES.items():
        if arr.dtype == dt or arr.dtype == dt.newbyteorder("="):
            return name
    raise SafetensorsError(
        f"dtype {arr.dtype} is not supported; convert to float32, int32 or int64"
    )


def _to_numpy(value):
    # Accept torch tensors without importing torch here.
    if hasattr(value, "detach"):
        value = value.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(value)


def save(path, tensors, metadata=None):
    """Writes {name: array-or-tensor} to `path`, names sorted, 8-byte aligned."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = _to_numpy(tensors[name])
        dname = _dtype_name(arr)
        data = arr.astype(_DTYPES[dname], copy=False).tobytes(order="C")
        header[name] = {
            "dtype": dname,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # pad with spaces, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for data in blobs:
            f.write(data)


def read_header(path):
    """Returns (header dict without __metadata__, metadata dict, data start)."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise SafetensorsError(f"{path}: shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", prefix)
        if n > _MAX_HEADER:
            raise SafetensorsError(
                f"{path}: header length {n} is implausible; not a safetensors file?"
            )
        raw = f.read(n)
    if len(raw) != n:
        raise SafetensorsError(f"{path}: header truncated ({len(raw)} of {n} bytes)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from e
    metadata = header.pop("__metadata__", {}) or {}
    return header, metadata, 8 + n


def load(path):
    """Returns {name: numpy array} (native byte order, read-write copies)."""
    header, _, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in header.items():
        dname = info.get("dtype")
        if dname not in _DTYPES:
            raise SafetensorsError(
                f"{path}: tensor '{name}' has dtype {dname}; supported: "
                + ", ".join(_DTYPES)
            )
        dt = _DTYPES[dname]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(x) for x in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * dt.itemsize:
            raise SafetensorsError(
                f"{path}: tensor '{name}' offsets [{begin}, {end}] do not fit shape "
                f"{shape} {dname} within {len(data)} data bytes"
            )
        arr = np.frombuffer(data, dtype=dt, count=count, offset=begin)
        out[name] = arr.reshape(shape).astype(dt.newbyteorder("="), copy=True)
    return out


def load_torch(path):
    """Like load(), but returns torch tensors."""
    import torch

    return {k: torch.from_numpy(v) for k, v in load(path).items()}
