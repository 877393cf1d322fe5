"""Reading a checkpoint's tensors one at a time, without executing anything in it.

Formats: `.safetensors` (the safetensors package's NumPy API: a JSON header, then raw
bytes), `.npz` (NumPy's zip of .npy files, loaded with allow_pickle=False), and, where
PyTorch is installed, `.pt` / `.pth` / `.bin` state dicts loaded with weights_only=True
(PyTorch's restricted unpickler: tensors and plain containers only). Every format is
listed from its header first (names, shapes, dtypes), so a tensor larger than the
memory budget is refused before it is read, and each tensor is read only when asked
for. Anything wrong with the file is a CheckpointError: one line naming the file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = {".safetensors": "safetensors", ".npz": "npz", ".pt": "torch", ".pth": "torch",
           ".bin": "torch"}


class CheckpointError(ValueError):
    """A file that cannot be inspected: the message names it and the problem."""


@dataclass(frozen=True)
class Entry:
    """One tensor, as the header lists it; `load` reads it (float64 for the stats)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], np.ndarray]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def entries(path: str | Path) -> list[Entry]:
    """Every tensor of the file, from its header; nothing is read yet."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise CheckpointError(f"{path.name}: not a checkpoint initscope reads (.safetensors, "
                              ".npz, and with PyTorch .pt, .pth, .bin)")
    if not path.is_file():
        raise CheckpointError(f"{path.name}: no such file")
    try:
        return {"safetensors": _safetensors, "npz": _npz, "torch": _torch}[kind](path)
    except CheckpointError:
        raise
    except Exception as e:  # any parser's complaint about a malformed file: one line
        why = str(e).splitlines()[0] if str(e) else "malformed"
        raise CheckpointError(f"{path.name}: not a readable {kind} file "
                              f"({type(e).__name__}: {why})") from None


def _safetensors(path: Path) -> list[Entry]:
    from safetensors import safe_open

    handle = safe_open(str(path), framework="np")
    out = []
    for name in handle.keys():
        sliced = handle.get_slice(name)
        shape = tuple(int(d) for d in sliced.get_shape())
        dtype = str(sliced.get_dtype()).lower()
        out.append(Entry(name, shape, dtype, _safetensors_loader(handle, path, name, shape,
                                                                  dtype)))
    return out


def _safetensors_loader(handle, path: Path, name: str, shape: tuple[int, ...],
                        dtype: str) -> Callable[[], np.ndarray]:
    if dtype == "bf16":  # NumPy has no bfloat16: read its bits (below)
        return lambda: _bfloat16(path, name, shape)
    return lambda: _float(handle.get_tensor(name))


def _bfloat16(path: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A bfloat16 tensor of a safetensors file, from its bytes: the header (8 bytes of
    little-endian length, then JSON) gives its byte range after the header, and a
    bfloat16 is the upper half of a float32's bits."""
    import json

    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        begin, end = header[name]["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != 2 * count:
            raise CheckpointError(f"{path.name}: {name}'s byte range does not fit its shape")
        f.seek(8 + length + begin)
        bits = np.frombuffer(f.read(end - begin), dtype="<u2")
    if bits.size != count:
        raise CheckpointError(f"{path.name}: {name} is cut short")
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64).reshape(shape)


def _npz(path: Path) -> list[Entry]:
    out = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            if dtype.hasobject:
                raise CheckpointError(f"{path.name}: {info.filename} holds Python objects, "
                                      "which initscope does not load")
            name = info.filename[:-4]
            if dtype.kind not in "fiub":
                raise CheckpointError(f"{path.name}: {name} holds {dtype}, not numbers")
            out.append(Entry(name, tuple(int(d) for d in shape), str(dtype),
                             lambda name=name: _float(_npz_member(path, name))))
    return out


def _npz_member(path: Path, name: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data[name]


def _torch(path: Path) -> list[Entry]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path.name}: reading PyTorch files needs PyTorch (pip install "
                              "'initscope[torch]'); or convert it to .safetensors") from None
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name}: not a state dict (a mapping of names to tensors)")
    out = []
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            out.append(Entry(str(name), tuple(value.shape), str(value.dtype).replace(
                "torch.", ""), lambda v=value: _float(v.detach().float().numpy())))
    return out


def _float(array: np.ndarray) -> np.ndarray:
    """float64 for the statistics (bfloat16 and friends arrive as float32 or uint16)."""
    if array.dtype.kind not in "fiub":
        raise CheckpointError(f"a tensor of dtype {array.dtype} is not numeric")
    return np.asarray(array, dtype=np.float64)


def iterate(path: str | Path) -> Iterator[tuple[Entry, np.ndarray]]:
    """(entry, values) one tensor at a time: at most one is held in memory."""
    for entry in entries(path):
        yield entry, entry.load()
