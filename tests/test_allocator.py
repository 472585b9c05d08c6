"""jaxgan.allocator keeps freed memory in the heap, so repeated large allocations stop faulting."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc malloc only')

# A step's pattern: ten 4 MiB temporaries malloc'ed, touched, then all freed, 20 times. Prints
# whether tune() took effect and the minor page faults of the last 10 steps.
_SCRIPT = """
import ctypes, resource
from jaxgan import allocator
tuned = allocator.tune()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 4 << 20
for i in range(20):
  if i == 10:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  blocks = [libc.malloc(size) for _ in range(10)]
  for p in blocks:
    ctypes.memset(p, 1, size)
  for p in blocks:
    libc.free(p)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def _faults(env: dict) -> tuple[str, int]:
  out = subprocess.run(
    [sys.executable, '-c', _SCRIPT], env=env, capture_output=True, text=True, check=True
  ).stdout.split()
  return out[0], int(out[1])


def test_tuned_malloc_reuses_freed_memory():
  base = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
  tuned, tuned_faults = _faults(base)
  default, default_faults = _faults({**base, 'JAXGAN_TUNE_MALLOC': '0'})
  assert (tuned, default) == ('True', 'False')
  pages = 10 * (4 << 20) // 4096  # one step's temporaries
  # glibc's defaults hand the freed memory back to the OS (or unmap it) after every step, so
  # each step faults all of its pages in again.
  assert default_faults >= 10 * pages * 0.9
  assert tuned_faults < pages / 10  # reused from the heap: at most a few stray pages
  # The same settings as environment variables, for processes that do not import jaxgan.
  from jaxgan import allocator

  env_tuned, env_faults = _faults({**base, 'JAXGAN_TUNE_MALLOC': '0', **allocator.env()})
  assert env_tuned == 'False' and env_faults < pages
