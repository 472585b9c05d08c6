"""What every jaxgan command does alike: user errors as one line and exit code 2."""

import sys

from jaxgan.errors import JaxganError


def fail(message: str) -> None:
  print(f'jaxgan: error: {message}', file=sys.stderr)
  sys.exit(2)


def guarded(fn, verbose: bool = False):
  """fn(); a JaxganError (bad config, data, checkpoint or workdir) becomes `fail`, unless
  `verbose` asks for the traceback."""
  try:
    return fn()
  except JaxganError as e:
    if verbose:
      raise
    fail(str(e))
