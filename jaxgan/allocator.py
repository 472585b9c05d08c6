"""glibc malloc settings for training on XLA:CPU.

Every step of a jitted XLA:CPU program mallocs its temporaries (several MB at batch 64) and
frees them when it ends. With glibc's defaults, blocks that large are served by fresh mmaps and
the freed top of the heap is handed back to the OS, so each step page-faults in, and the kernel
zero-fills, the same memory again (how much that costs, in a fresh process and in the
trainer, whose data loading already raises glibc's adaptive thresholds: docs/benchmarks.md).
Keeping freed memory in the heap costs nothing but resident memory the process has already
used once.

`tune()` is what the trainer and `jaxgan.bench` call; `env()` gives the same settings as the
environment variables glibc reads at start-up, for processes that do not import jaxgan.
Set JAXGAN_TUNE_MALLOC=0 to keep glibc's defaults.
"""

import ctypes
import functools
import logging
import os
import platform

# mallopt(3) parameters, from glibc's <malloc.h>, with the values used.
_SETTINGS = (
  ('TRIM_THRESHOLD', -1, 1 << 30),  # return the heap's free top to the OS only above 1 GiB
  ('TOP_PAD', -2, 256 << 20),  # grow the heap in 256 MiB steps rather than per request
  ('MMAP_THRESHOLD', -3, 32 << 20),  # only blocks over 32 MiB (glibc's maximum) get own mmaps
)


def env() -> dict[str, str]:
  """The settings as glibc's MALLOC_*_ environment variables (read when a process starts)."""
  return {f'MALLOC_{name}_': str(value) for name, _, value in _SETTINGS}


@functools.cache
def tune() -> bool:
  """Applies the settings to this process, once; True if they are in effect.

  A no-op (False) off glibc (macOS, musl) or with JAXGAN_TUNE_MALLOC=0.
  """
  if os.environ.get('JAXGAN_TUNE_MALLOC', '1') == '0':
    return False
  if platform.libc_ver()[0] != 'glibc':
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  ok = all(mallopt(param, value) == 1 for _, param, value in _SETTINGS)
  if not ok:
    logging.warning('mallopt refused a setting: XLA:CPU steps may run slower')
  return ok
