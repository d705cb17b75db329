"""Reads and writes the float32 .safetensors files of the Tools/onnx scripts with NumPy alone
(8-byte little-endian header length, JSON header padded with spaces, raw little-endian data)."""
import json
import os

import numpy as np


def write(path, tensors, metadata):
    """Writes (name, array) pairs as F32 to a temporary file, then renames it over `path`."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, a in tensors:
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def read(path):
    """The F32 tensors of a file, by name."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start:8 + n + end], dtype="<f4").reshape(info["shape"])
    return out
