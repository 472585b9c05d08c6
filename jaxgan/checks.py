"""Value checks for config keys: each returns a description of the problem, or None if fine.

Component modules (models, data sources) build their config schemas from these: a schema maps
each key to a `Key` (its default and check: the key's one definition) or, for a key every
config must set itself, to a bare check.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str | None]


def integer(lo: int | None = None) -> Check:
  def check(v):
    if not isinstance(v, int) or isinstance(v, bool):
      return f'must be an integer, got {v!r}'
    if lo is not None and v < lo:
      return f'must be >= {lo}, got {v}'
    return None

  return check


def positive_float(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool):
    return f'must be a number, got {v!r}'
  return None if v > 0 else f'must be > 0, got {v}'


def nonneg_float(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool):
    return f'must be a number, got {v!r}'
  return None if v >= 0 else f'must be >= 0, got {v}'


def beta(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 1:
    return f'must be a number in [0, 1), got {v!r}'
  return None


def probability(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 1:
    return f'must be a number in [0, 1], got {v!r}'
  return None


def open_unit(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v < 1:
    return f'must be a number in (0, 1), got {v!r}'
  return None


def boolean(v) -> str | None:
  return None if isinstance(v, bool) else f'must be True or False, got {v!r}'


def string(v) -> str | None:
  return None if isinstance(v, str) else f'must be a string, got {v!r}'


def one_of(*choices: str) -> Check:
  def check(v):
    return None if v in choices else f'must be one of {", ".join(choices)}; got {v!r}'

  return check


def int_tuple(v) -> str | None:
  ok = isinstance(v, tuple | list) and v and all(isinstance(f, int) and f > 0 for f in v)
  return None if ok else f'must be a non-empty tuple of positive integers, got {v!r}'


def int_one_of(*choices: int) -> Check:
  def check(v):
    if isinstance(v, int) and not isinstance(v, bool) and v in choices:
      return None
    return f'must be one of {", ".join(map(str, choices))}; got {v!r}'

  return check


def power_of_two(lo: int, hi: int) -> Check:
  def check(v):
    ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi and not v & (v - 1)
    return None if ok else f'must be a power of two: {lo}, {2 * lo}, ..., {hi}; got {v!r}'

  return check


@dataclasses.dataclass(frozen=True)
class Key:
  """A config key's one definition: its default, its check, whether values of other types
  than the default's may replace it on the command line (`any_type`: 0.5 or 'adaptive'), and
  whether it takes a schedule over images seen (`schedulable`, `jaxgan.schedules.key`)."""

  default: Any
  check: Check
  any_type: bool = False
  schedulable: bool = False


def key_of(entry) -> Key | None:
  """The Key of a schema entry, or None for a bare check (a key with no default: required)."""
  return entry if isinstance(entry, Key) else None


def check_of(entry) -> Check:
  return entry.check if isinstance(entry, Key) else entry
