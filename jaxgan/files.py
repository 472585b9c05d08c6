"""Atomic file writes: a reader (or a resumed run) never sees half a file."""

import contextlib
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '.tmp'):
  """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

  The temporary file lives in the same folder so that the rename is atomic, and a write cut
  short leaves only a hidden temporary file, never something that looks complete.
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.', suffix=suffix)
  os.close(fd)
  os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result should look like open()'s
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def write_bytes(path: str, data: bytes) -> None:
  with atomic_path(path) as tmp, open(tmp, 'wb') as f:
    f.write(data)


def write_json(path: str, obj, indent: int | None = None) -> None:
  with atomic_path(path) as tmp, open(tmp, 'w') as f:
    json.dump(obj, f, indent=indent)
    if indent is not None:
      f.write('\n')
