"""One image-decoding process of a folder preparation (jaxgan.data.folder), not a command.

Started as `python -m jaxgan.data.decode_worker` rather than through multiprocessing: a fresh
interpreter needs neither fork() (unsafe in a process running JAX's threads) nor spawn's
re-import of the caller's main module (which re-runs an unguarded script). It reads pickled
`_decode_chunk` arguments from stdin and writes each pickled result to stdout, until EOF.
"""

import os
import pickle
import sys


def main() -> None:
  # The protocol owns the real stdout; anything else printing there goes to stderr instead.
  results = os.fdopen(os.dup(1), 'wb')
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  from jaxgan.data import folder

  tasks = sys.stdin.buffer
  while True:
    try:
      args = pickle.load(tasks)
    except EOFError:
      return
    pickle.dump(folder._decode_chunk(*args), results, protocol=pickle.HIGHEST_PROTOCOL)
    results.flush()


if __name__ == '__main__':
  try:
    main()
  except (KeyboardInterrupt, BrokenPipeError):  # the preparing process stopped or went away
    sys.exit(1)
