"""One registry shape for every kind of component chosen by name: model families, losses,
penalties, data sources, feature networks and metrics.

`Registry(kind, key)` maps names to components; `register(name, obj)` adds one (and returns
it, so it can decorate); `get(name)` raises `UnknownName`, a one-line ConfigError that names
the config key and every known name, for a name that is not registered. `origin(name)` is the
module outside jaxgan that registered it, which a run folder records (`jaxgan.workdir`) so that
a later command can say what to `--import`.
"""

import sys
from typing import Any

from jaxgan.errors import ConfigError


class UnknownName(ConfigError):
  pass


class Registry:
  """Components of one kind by name, in registration order."""

  def __init__(self, kind: str, key: str = '', items: dict[str, Any] | None = None):
    self.kind, self.key = kind, key
    self._items: dict[str, Any] = dict(items or {})
    self._origins: dict[str, str] = {}

  def register(self, name: str, obj: Any) -> Any:
    self._items[name] = obj
    self._origins[name] = _caller()
    return obj

  def origin(self, name: str) -> str | None:
    """The module that registered `name` (e.g. 'my_models', or '__main__' for a script); None
    for jaxgan's own."""
    return self._origins.get(name)

  def get(self, name: str) -> Any:
    if name not in self._items:
      where = f' ({self.key})' if self.key else ''
      raise UnknownName(
        f'unknown {self.kind} {name!r}{where}; known: {", ".join(self._items) or "none"}'
      )
    return self._items[name]

  def names(self) -> tuple[str, ...]:
    return tuple(self._items)

  def values(self) -> tuple[Any, ...]:
    return tuple(self._items.values())

  def __contains__(self, name: str) -> bool:
    return name in self._items

  def copy(self) -> 'Registry':
    """A registry with the same entries, e.g. to undo what a test registers."""
    out = Registry(self.kind, self.key, self._items)
    out._origins = dict(self._origins)
    return out


def _caller() -> str | None:
  """The module that called `register` (through the kinds' own `register` wrappers); None when
  it is jaxgan's own."""
  frame = sys._getframe(1)
  while frame is not None and frame.f_code.co_name == 'register':
    frame = frame.f_back
  name = frame.f_globals.get('__name__', '') if frame is not None else ''
  return None if name == 'jaxgan' or name.startswith('jaxgan.') else name
