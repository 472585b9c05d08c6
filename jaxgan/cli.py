"""What every jaxgan command does alike: user errors as one line and exit code 2."""

import sys

from absl import flags

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


def parse_config_flags(argv: list[str]) -> list[str]:
  """absl's parser for a command with a --config file flag (ml_collections), with bad flags and
  config overrides reported as one line, not a traceback."""
  parsed = flags.FLAGS
  try:
    argv = parsed(argv)
    parsed.config.keys()  # config files load lazily; fail here, not mid-setup
    return argv
  except OSError as e:  # the config file is missing or raised on import
    detail = [ln.strip() for ln in str(e.__cause__ or e).splitlines() if ln.strip()][-1]
    fail(f'cannot load the config file given by --config: {detail}')
  except flags.Error as e:  # a missing flag, or an override of the wrong type
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    fail(lines[0] + (f' {lines[-1]}' if lines[0].endswith(':') and len(lines) > 1 else ''))
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a key the config lacks
    if '--verbose' in argv:
      raise
    bad = [a.split('=')[0] for a in argv if a.startswith('--config.')]
    fail(f'unknown config key {e} (in {", ".join(bad)}); see configs/common.py for the keys')
