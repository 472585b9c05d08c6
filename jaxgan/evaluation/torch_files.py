"""PyTorch files read without PyTorch, and without running anything they contain.

Two kinds of file hold network weights:
- `torch.save` checkpoints (a state dict): a zip (`<name>/data.pkl` and one `<name>/data/<key>`
  per storage; torch >= 1.6) or the legacy sequence of pickles;
- TorchScript archives (`torch.jit.save`): a zip of the same shape whose `data.pkl` pickles the
  module tree (`__torch__.<module>.<Class>` objects holding tensors and plain attributes) and
  whose `code/` holds the modules' source, which a TorchScript loader would compile and run.

A pickle can call any importable function, so both are unpickled by `_RestrictedUnpickler`: it
builds tensors (as numpy arrays), plain containers and, in TorchScript archives only, inert
stand-ins for the module objects (`ScriptObject`: their attributes, nothing more). Any other
global is refused, and `code/` is never read. `read(data)` returns the file's tensors by dotted
name, the modules' plain attributes and class names.
"""

import collections
import io
import keyword
import pickle
import struct
import zipfile
from typing import Any, NamedTuple

import numpy as np

_STORAGE_DTYPES = {
  'FloatStorage': np.float32,
  'DoubleStorage': np.float64,
  'HalfStorage': np.float16,
  'LongStorage': np.int64,
  'IntStorage': np.int32,
  'ShortStorage': np.int16,
  'CharStorage': np.int8,
  'ByteStorage': np.uint8,
  'BoolStorage': np.bool_,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STATE_DICT, TORCHSCRIPT = 'torch.save state dict', 'TorchScript archive'


class TorchFile(NamedTuple):
  kind: str  # STATE_DICT or TORCHSCRIPT
  tensors: dict[str, np.ndarray]  # 'net.layers.conv.weight' -> array
  attributes: dict[str, dict[str, Any]]  # TorchScript: module path -> its non-tensor attributes
  classes: dict[str, str]  # TorchScript: module path -> its class ('__torch__.inceptionv3.X')


class _Storage(NamedTuple):
  key: str
  dtype: Any
  numel: int


class TensorRef(NamedTuple):
  """A tensor as the pickle describes it; its bytes come later (after the pickle, or in the
  zip), so tensors are built once every storage is known."""

  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  if not isinstance(storage, _Storage):
    raise pickle.UnpicklingError(f'a tensor on {type(storage).__name__:.40}, not a storage')
  return TensorRef(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data, *unused):
  return data


def _as_list(values):
  # TorchScript pickles typed lists (List[int], ...) as build_intlist([...]).
  if not isinstance(values, list):
    raise pickle.UnpicklingError(f'a typed list of {type(values).__name__:.40}')
  return values


class _Dtype(NamedTuple):
  dtype: Any


class ScriptObject:
  """A TorchScript object (a module) as data: `qualified_name` and `attrs`, the dict the pickle
  gives it. Subclassed per class name by the unpickler; never has any behaviour."""

  qualified_name = ''

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise pickle.UnpicklingError(f'{self.qualified_name}: a state of {type(state).__name__}')
    self.attrs = state


def _script_class(module: str, name: str) -> type:
  parts = [*module.split('.'), name]
  valid = all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)
  if parts[0] != '__torch__' or not valid:
    raise pickle.UnpicklingError(f'refusing {module}.{name}: not a TorchScript class name')
  return type(name, (ScriptObject,), {'qualified_name': '.'.join(parts)})


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickles tensors and plain containers and, with `torchscript`, TorchScript objects as
  inert `ScriptObject`s: the few globals a tensor needs map to harmless stand-ins; any other
  global (which in a pickle can run arbitrary code) is refused."""

  _GLOBALS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    **{('torch', name): _Dtype(dtype) for name, dtype in _STORAGE_DTYPES.items()},
  }
  _TORCHSCRIPT_GLOBALS = {
    ('torch.jit._pickle', name): _as_list
    for name in ('build_intlist', 'build_floatlist', 'build_boollist', 'build_doublelist')
  }

  def __init__(self, file, storages_out: dict, torchscript: bool = False):
    super().__init__(file)
    self._storages = storages_out
    self._torchscript = torchscript
    self._classes: dict[tuple[str, str], type] = {}

  def find_class(self, module: str, name: str):
    if (module, name) in self._GLOBALS:
      return self._GLOBALS[module, name]
    if self._torchscript and (module, name) in self._TORCHSCRIPT_GLOBALS:
      return self._TORCHSCRIPT_GLOBALS[module, name]
    if self._torchscript and module.split('.')[0] == '__torch__':
      if (module, name) not in self._classes:
        self._classes[module, name] = _script_class(module, name)
      return self._classes[module, name]
    raise pickle.UnpicklingError(f'refusing {module}.{name}: not part of a tensor file')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'unexpected persistent id {pid!r:.80}')
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(storage_type, _Dtype):
      raise pickle.UnpicklingError(f'unexpected storage type {storage_type!r:.80}')
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError('storage views (torch < 0.4 files) are not supported')
    storage = _Storage(key, storage_type.dtype, numel)
    self._storages[key] = storage
    return storage


def _unpickle(file, torchscript: bool = False) -> tuple[Any, dict[str, _Storage]]:
  storages: dict[str, _Storage] = {}
  return _RestrictedUnpickler(file, storages, torchscript).load(), storages


def read(data: bytes) -> TorchFile:
  """The tensors (and, for TorchScript, the modules' attributes) of a PyTorch file's bytes.

  Raises ValueError or pickle.UnpicklingError (or a zip or struct error for a corrupt file)."""
  if zipfile.is_zipfile(io.BytesIO(data)):
    return _read_zip(data)
  return _read_legacy(data)


def _read_zip(data: bytes) -> TorchFile:
  with zipfile.ZipFile(io.BytesIO(data)) as z:
    names = z.namelist()
    pkl = [n for n in names if n.endswith('/data.pkl') or n == 'data.pkl']
    if len(pkl) != 1:
      raise ValueError('a zip without one data.pkl: not a PyTorch file')
    prefix = pkl[0][: -len('data.pkl')]
    # torch.jit.save writes the modules' code beside the data; torch.save writes none.
    torchscript = any(n.startswith(f'{prefix}code/') for n in names)
    obj, storages = _unpickle(io.BytesIO(z.read(pkl[0])), torchscript)
    raw = {key: z.read(f'{prefix}data/{key}') for key in storages}
  if torchscript:
    if not isinstance(obj, ScriptObject):
      raise ValueError(f'a TorchScript archive holding a {type(obj).__name__}, not a module')
    tensors, attributes, classes = {}, {}, {}
    _walk(obj, '', raw, tensors, attributes, classes)
    return TorchFile(TORCHSCRIPT, tensors, attributes, classes)
  return TorchFile(STATE_DICT, _state_dict(obj, raw), {}, {})


def _read_legacy(data: bytes) -> TorchFile:
  obj, raw = _legacy_parts(data)
  return TorchFile(STATE_DICT, _state_dict(obj, raw), {}, {})


def read_storage(data: bytes) -> tuple[_Storage, bytes]:
  """A storage pickled on its own, as plain `pickle` pickles tensors' storages (the bytes of
  a legacy `torch.save` of the storage, given to `torch.storage._load_from_bytes`)."""
  obj, raw = _legacy_parts(data)
  if not isinstance(obj, _Storage):
    raise pickle.UnpicklingError(f"a storage's bytes holding a {type(obj).__name__:.40}")
  return obj, raw[obj.key]


def _legacy_parts(data: bytes) -> tuple[Any, dict[str, bytes]]:
  """torch < 1.6 (and `_use_new_zipfile_serialization=False`): magic number, protocol, system
  info, the object, the storage keys, then each storage's raw bytes after an int64 count.
  Returns the object and {storage key: its bytes}."""
  f = io.BytesIO(data)
  try:
    magic = _RestrictedUnpickler(f, {}).load()
  except Exception:  # random bytes fail to unpickle in many ways
    magic = None
  if magic != LEGACY_MAGIC:
    raise ValueError('not a PyTorch file (neither a zip nor the legacy format)')
  _RestrictedUnpickler(f, {}).load()  # protocol version
  _RestrictedUnpickler(f, {}).load()  # sys info (endianness, type sizes)
  obj, storages = _unpickle(f)
  keys = _RestrictedUnpickler(f, {}).load()
  raw = {}
  for key in keys:
    if key not in storages:
      raise ValueError(f'storage {key} is listed but used by no tensor')
    (count,) = struct.unpack('<q', f.read(8))
    nbytes = count * np.dtype(storages[key].dtype).itemsize
    raw[key] = f.read(nbytes)
    if len(raw[key]) != nbytes:
      raise ValueError('file truncated')
  return obj, raw


def _state_dict(obj, raw: dict[str, bytes]) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict):
    raise ValueError(f'the file holds a {type(obj).__name__}, not a state dict')
  return {str(name): materialize(t, raw) for name, t in obj.items() if isinstance(t, TensorRef)}


def _walk(obj: ScriptObject, path: str, raw, tensors, attributes, classes) -> None:
  """Flattens a TorchScript module tree into tensors by dotted name and, per module, its
  other attributes (strides, paddings, flags) and its class."""
  classes[path] = obj.qualified_name
  attributes[path] = {}
  for name, value in getattr(obj, 'attrs', {}).items():
    name = str(name)
    full = f'{path}.{name}' if path else name
    if isinstance(value, TensorRef):
      tensors[full] = materialize(value, raw)
    elif isinstance(value, ScriptObject):
      _walk(value, full, raw, tensors, attributes, classes)
    else:
      attributes[path][name] = value


def materialize(t: TensorRef, raw: dict[str, bytes]) -> np.ndarray:
  flat = np.frombuffer(raw[t.storage.key], dtype=t.storage.dtype)
  if flat.size < t.storage.numel:
    raise ValueError(f'storage {t.storage.key} truncated')
  # as_strided reads whatever memory the strides point to: check the view stays inside.
  last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True) if n > 0)
  if t.offset < 0 or min(t.stride, default=0) < 0 or (0 not in t.size and last >= flat.size):
    raise ValueError(f'a tensor reaches outside its storage {t.storage.key}')
  if 0 in t.size:
    return np.zeros(t.size, flat.dtype)
  item = flat.itemsize
  view = np.lib.stride_tricks.as_strided(
    flat[t.offset :], t.size, tuple(s * item for s in t.stride), writeable=False
  )
  return np.array(view)
