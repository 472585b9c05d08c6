"""Network pickles of stylegan2-ada-pytorch, read without PyTorch and without running the code
they carry.

A network snapshot is `pickle.dump(dict(G=..., D=..., G_ema=..., augment_pipe=...,
training_set_kwargs=...))`. Its networks are `torch_utils.persistence` classes, each pickled as
a call `_reconstruct_persistent_obj(meta)`: meta holds the source code of the class's module
(which the official loader executes), the class name and `state`, the module's __dict__
(`_parameters`, `_buffers`, `_modules`, `_init_args`, `_init_kwargs` and plain attributes).
Tensors are pickled as torch's rebuild calls on storages, each storage the bytes of a legacy
`torch.save` handed to `torch.storage._load_from_bytes`.

`read(data)` unpickles with a restricted unpickler: `_reconstruct_persistent_obj` is only a
marker whose meta's `state` becomes a `Module` (the source is never read, let alone run);
tensors become numpy arrays (jaxgan.evaluation.torch_files); besides plain containers, only
`collections.OrderedDict`, dnnlib's EasyDict (a dict), sets and numpy scalars are built. Any
other global, such as a `__reduce__` that would run a command, is refused before it is called.

R3GAN's training snapshots (brownvc/R3GAN) pickle their networks as plain torch modules, not
persistent ones: each a class named by reference and the module's __dict__ as its state. The
classes of `PLAIN_MODULES` (R3GAN's and the torch.nn containers and layers they use) map to a
stand-in that keeps that state, also read as a `Module` (class name `module.Name`, no init
kwargs); torch dtypes (a stage's compute dtype) are read as their names.
"""

import dataclasses
import io
import pickle
from typing import Any

import numpy as np

from jaxgan.errors import JaxganError
from jaxgan.evaluation import torch_files

PERSISTENT = ('torch_utils.persistence', '_reconstruct_persistent_obj')
# The plain (not persistent) torch modules of R3GAN's snapshots, by module: their class names.
PLAIN_MODULES = {
  'training.networks': ('Generator', 'Discriminator'),
  'R3GAN.Networks': (
    'Generator', 'Discriminator', 'GeneratorStage', 'DiscriminatorStage', 'ResidualBlock',
    'Convolution', 'UpsampleLayer', 'DownsampleLayer', 'GenerativeBasis', 'DiscriminativeBasis',
  ),
  'R3GAN.Resamplers': tuple(  # the official aliases pick CUDA; Reference is its CPU twin
    f'Interpolative{way}sampler{impl}' for way in ('Up', 'Down') for impl in ('CUDA', 'Reference')
  ),
  'R3GAN.FusedOperators': ('BiasedActivationCUDA', 'BiasedActivationReference'),
  'torch.nn.modules.container': ('ModuleList',),
  'torch.nn.modules.conv': ('Conv2d',),
  'torch.nn.modules.linear': ('Linear',),
}  # fmt: skip
TORCH_DTYPES = ('float32', 'float16', 'bfloat16', 'float64')


@dataclasses.dataclass
class Module:
  """A pickled network module as data: its class name, tensors and sub-modules by name, the
  arguments it was built with, and its other attributes."""

  class_name: str
  params: dict[str, np.ndarray | None]
  buffers: dict[str, np.ndarray | None]
  modules: dict[str, 'Module | None']
  init_kwargs: dict[str, Any]
  attrs: dict[str, Any]

  def tensors(self, prefix: str = '') -> dict[str, np.ndarray]:
    """Every parameter and buffer by dotted name, as torch's state_dict names them."""
    out = {f'{prefix}{k}': v for k, v in {**self.params, **self.buffers}.items() if v is not None}
    for name, child in self.modules.items():
      if child is not None:
        out.update(child.tensors(f'{prefix}{name}.'))
    return out


class _Persistent:
  """What `_reconstruct_persistent_obj(meta)` leaves until the tensors are built."""

  def __init__(self, meta):
    if not isinstance(meta, dict) or meta.get('type') != 'class':
      raise pickle.UnpicklingError('a persistent object whose meta is not a class record')
    if not isinstance(meta.get('state'), dict) or not isinstance(meta.get('class_name'), str):
      raise pickle.UnpicklingError('a persistent object without a class name and state')
    self.class_name, self.state = meta['class_name'], meta['state']


class _Plain:
  """What a plain torch module's pickle (its class, then its __dict__) leaves until the tensors
  are built; subclassed per allowed class name."""

  class_name = ''

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise pickle.UnpicklingError(f'{self.class_name}: a module whose state is not a dict')
    self.state = state


def _plain(module: str, name: str) -> type:
  return type(name, (_Plain,), {'class_name': f'{module}.{name}'})


class _EasyDict(dict):
  """dnnlib.util.EasyDict's data: a dict."""


class _NumpyDtype:
  """numpy.dtype(name, align, copy) and its pickled byte order, as data."""

  def __init__(self, name, *unused):
    if not isinstance(name, str):
      raise pickle.UnpicklingError('a numpy dtype without a name')
    self.name, self.order = name, '='

  def __setstate__(self, state):
    if isinstance(state, tuple) and len(state) > 1 and state[1] in '<>|=':
      self.order = state[1]

  def numpy(self) -> np.dtype:
    dtype = np.dtype(self.name)
    if dtype.kind not in 'biufc':  # numbers only: object dtypes unpickle further objects
      raise pickle.UnpicklingError(f'a numpy scalar of dtype {self.name!r}')
    return dtype.newbyteorder(self.order) if self.order != '|' else dtype


def _numpy_scalar(dtype, data=None):
  if not isinstance(dtype, _NumpyDtype) or not isinstance(data, bytes):
    raise pickle.UnpicklingError('a numpy scalar that is not a number')
  return np.frombuffer(data, dtype.numpy(), count=1)[0].item()


class _Unpickler(torch_files._RestrictedUnpickler):
  """torch_files' unpickler (tensors, plain containers) with the few other globals a network
  snapshot uses; each maps to a stand-in that builds data, never to the original."""

  def __init__(self, file):
    super().__init__(file, {})
    self.raw: dict[str, bytes] = {}
    self._extra = {
      PERSISTENT: _Persistent,
      ('torch.storage', '_load_from_bytes'): self._load_from_bytes,
      ('torch._utils', '_rebuild_parameter_with_state'): torch_files._rebuild_parameter,
      ('dnnlib.util', 'EasyDict'): _EasyDict,
      ('builtins', 'set'): set,
      ('builtins', 'frozenset'): frozenset,
      ('numpy', 'dtype'): _NumpyDtype,
      ('numpy.core.multiarray', 'scalar'): _numpy_scalar,
      ('numpy._core.multiarray', 'scalar'): _numpy_scalar,
      **{(m, n): _plain(m, n) for m, names in PLAIN_MODULES.items() for n in names},
      **{('torch', n): f'torch.{n}' for n in TORCH_DTYPES},
    }

  def find_class(self, module: str, name: str):
    if (module, name) in self._extra:
      return self._extra[module, name]
    try:
      return super().find_class(module, name)
    except pickle.UnpicklingError:
      raise pickle.UnpicklingError(f'refusing {module}.{name}: not part of a network') from None

  def persistent_load(self, pid):
    raise pickle.UnpicklingError(f'unexpected persistent id {pid!r:.80}')

  def _load_from_bytes(self, data):
    if not isinstance(data, bytes):
      raise pickle.UnpicklingError('a storage whose bytes are not bytes')
    storage, raw = torch_files.read_storage(data)
    key = str(len(self.raw))  # keys are unique within one storage's bytes only
    self.raw[key] = raw
    return storage._replace(key=key)


def _build(obj, raw: dict[str, bytes], depth: int = 0):
  """obj with tensors as numpy arrays and persistent objects as `Module`s."""
  if depth > 100:
    raise ValueError('objects nested more than 100 deep')
  if isinstance(obj, torch_files.TensorRef):
    return torch_files.materialize(obj, raw)
  if isinstance(obj, _Persistent | _Plain):
    if not hasattr(obj, 'state'):
      raise ValueError(f'{obj.class_name}: a module pickled without its state')
    state = {k: _build(v, raw, depth + 1) for k, v in obj.state.items()}
    parts = [state.pop(k, None) or {} for k in ('_parameters', '_buffers', '_modules')]
    if not all(isinstance(p, dict) for p in parts):
      raise ValueError(f'{obj.class_name}: parameters, buffers or modules that are not dicts')
    for name, value in [*parts[0].items(), *parts[1].items()]:
      if value is not None and not isinstance(value, np.ndarray):
        raise ValueError(f'{obj.class_name}.{name}: a {type(value).__name__}, not a tensor')
    for name, value in parts[2].items():
      if value is not None and not isinstance(value, Module):
        raise ValueError(f'{obj.class_name}.{name}: a {type(value).__name__}, not a module')
    kwargs = state.pop('_init_kwargs', None) or {}
    attrs = {k: v for k, v in state.items() if not k.startswith('_') and k != 'training'}
    return Module(obj.class_name, *map(dict, parts), dict(kwargs), attrs)
  if isinstance(obj, dict):
    return {k: _build(v, raw, depth + 1) for k, v in obj.items()}
  if isinstance(obj, list | tuple):
    return type(obj)(_build(v, raw, depth + 1) for v in obj)
  return obj


def read(data: bytes, what: str = 'the pickle') -> dict[str, Any]:
  """The top-level dict of a network pickle's bytes, networks as `Module`s. Raises a one-line
  JaxganError for anything else (`what` names the file in it)."""
  unpickler = _Unpickler(io.BytesIO(data))
  try:
    obj = unpickler.load()
    obj = _build(obj, unpickler.raw)
  except pickle.UnpicklingError as e:
    raise JaxganError(f'{what} is not a network pickle jaxgan can read safely: {e}') from None
  except Exception as e:  # a damaged or foreign file fails to unpickle in many ways
    raise JaxganError(f'{what} is not a readable network pickle ({type(e).__name__}: {e})') from e
  if not isinstance(obj, dict):
    raise JaxganError(f'{what} holds a {type(obj).__name__}, not a dict of networks')
  return obj
