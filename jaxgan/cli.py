"""What every jaxgan command does alike: the shared flags (--verbose, --import), --config by
path or by a shipped config's name, user errors as one line and exit code 2, and a console
with the command's own lines only."""

import importlib
import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from jaxgan import configs
from jaxgan.errors import ConfigError, JaxganError


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


def define_config_flag(required: bool = True) -> None:
  config_flags.DEFINE_config_file(
    'config',
    None,
    'A config file (a get_config() file; path[:args]) or a shipped config by name '
    f'(name[:args]: {", ".join(configs.NAMES)}).',
  )
  if required:
    flags.mark_flags_as_required(['config'])


def run(main, with_config: bool = False) -> None:
  """`app.run(main)` for a jaxgan command: defines --verbose and --import, and before `main`
  hides other libraries' INFO lines (unless --verbose) and imports the user's modules."""
  flags.DEFINE_bool('verbose', False, "Tracebacks for errors, and other libraries' INFO logs.")
  flags.DEFINE_list(
    'import',
    [],
    'Modules of yours to import first (module names on the path, or .py files), e.g. those '
    'that register a model family, loss, penalty, data source or metric; comma-separated.',
  )

  def command(argv):
    verbose = flags.FLAGS.verbose
    if not verbose:
      logging.get_absl_handler().addFilter(_OwnLinesOnly())
    guarded(lambda: import_modules(flags.FLAGS['import'].value), verbose)
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
    return main()

  parser = parse_config_flags if with_config else _parse_flags
  app.run(command, flags_parser=parser)


class _OwnLinesOnly(logging.logging.Filter):
  """jaxgan's own INFO lines, and every library's warnings: JAX's backend probing and orbax's
  per-checkpoint INFO lines would bury the command's lines."""

  def filter(self, record):
    own = f'{os.sep}jaxgan{os.sep}' in record.pathname
    return own or record.levelno > logging.logging.INFO


def import_modules(names) -> list[str]:
  """Imports each of `names`: a module name on sys.path, or a .py file (whose folder goes on
  sys.path, so that it can import modules beside it). Returns the module names."""
  out = []
  for name in names:
    if name.endswith('.py'):
      if not os.path.isfile(name):
        raise ConfigError(f'--import: no file {name!r}')
      folder, name = os.path.split(os.path.abspath(name))
      _on_path(folder)
      name = name[:-3]
    try:
      importlib.import_module(name)
    except Exception as e:  # not there, or the user's module raised: where, in one line
      if isinstance(e, ImportError) and e.name == name:
        raise ConfigError(
          f'--import: no module {name!r} on the path ({os.getcwd()} included)'
        ) from None
      raise ConfigError(f'--import={name}: {_located(e)}') from e
    out.append(name)
  return out


def _on_path(folder: str) -> None:
  if folder not in sys.path:
    sys.path.insert(0, folder)


def _located(e: BaseException) -> str:
  """'file:line: Type: message' of an exception raised in the user's code."""
  if isinstance(e, SyntaxError):
    return f'{e.filename}:{e.lineno}: SyntaxError: {e.msg}'
  frames = [f for f in traceback.extract_tb(e.__traceback__) if '<frozen' not in f.filename]
  where = f'{frames[-1].filename}:{frames[-1].lineno}: ' if frames else ''
  return f'{where}{type(e).__name__}: {e}'


def resolve_config_arg(value: str) -> str:
  """--config's value as ml_collections reads it: a shipped config's name becomes its file;
  a file of the user's has its folder put on sys.path (to import modules beside it)."""
  path, sep, args = value.partition(':')
  if not os.path.exists(path):
    name = path[:-3] if path.endswith('.py') else path
    if name in configs.NAMES:
      return str(configs.DIR / f'{name}.py') + sep + args
    raise ConfigError(
      f'--config={value}: no file {path!r}, and no shipped config of that name '
      f'({", ".join(configs.NAMES)})'
    )
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.realpath(folder) != str(configs.DIR):  # not beside the package's own test.py etc.
    _on_path(folder)
  return value


def _config_args(argv: list[str]) -> list[str]:
  out, it = [], iter(argv)
  for a in it:
    if a.startswith('--config='):
      a = '--config=' + resolve_config_arg(a.split('=', 1)[1])
    elif a == '--config':
      out.append(a)
      a = resolve_config_arg(next(it, ''))
    out.append(a)
  return out


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # a missing flag, a value of the wrong type, a broken config file
    if str(e).startswith('flag --config=') and not isinstance(_root(e), flags.Error):
      fail(f'cannot load the config file given by --config: {_located(_root(e))}')
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    fail(lines[0] + (f' {lines[-1]}' if lines[0].endswith(':') and len(lines) > 1 else ''))


def _root(e: BaseException) -> BaseException:
  while e.__cause__ or e.__context__:
    e = e.__cause__ or e.__context__
  return e


def parse_config_flags(argv: list[str]) -> list[str]:
  """absl's parser for a command with --config, with a bad config file, flag or override
  reported as one line, not a traceback."""
  verbose = '--verbose' in argv
  try:
    argv = _parse_flags(_config_args(argv))
    flags.FLAGS.config.keys()  # config files load lazily; fail here, not mid-setup
    return argv
  except ConfigError as e:
    fail(str(e))
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a key the config lacks
    if verbose:
      raise
    fail(_unknown_key(e, argv))
  except Exception as e:  # the config file does not parse, or raised
    if verbose:
      raise
    fail(f'cannot load the config file given by --config: {_located(_root(e))}')


def _unknown_key(e: Exception, argv: list[str]) -> str:
  """ml_collections' "'key'\\nDid you mean ...?" as one line naming the override that has it."""
  message = e
  while isinstance(message, BaseException) and message.args:  # KeyError in AttributeError
    message = message.args[0]
  lines = str(message).split('\n')
  key = lines[0].strip('\'"')
  overrides = [a.split('=')[0] for a in argv if a.startswith('--config.')]
  where = next((o for o in overrides if o.split('.')[-1] == key), None)
  hint = ' '.join(ln.strip() for ln in lines[1:] if ln.strip())
  return (
    f'unknown config key {key!r}'
    + (f' in {where}' if where else '')
    + (f'. {hint}' if hint else '')
  )
