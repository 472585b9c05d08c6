"""Fetching a dataset file over HTTP(S), for the sources that download once into a cache."""

import http.client
import os
import urllib.request

from jaxgan.errors import DataError

TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20


def fetch(url: str, dest: str, offline_hint: str) -> None:
  """Streams `url` into the file `dest` (synced to disk); a DataError ending in `offline_hint`
  (how to do without the network) if it cannot be fetched."""
  try:
    with open(dest, 'wb') as f, urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
      while chunk := r.read(_CHUNK_BYTES):
        f.write(chunk)
      f.flush()
      os.fsync(f.fileno())
  except (OSError, http.client.HTTPException) as e:
    raise DataError(f'cannot fetch {url} ({e}); {offline_hint}') from e
