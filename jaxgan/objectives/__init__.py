"""GAN objectives by name: each a pair of D and G losses on D's logits; penalties apart.

`get(name)` returns an `Objective`; `register(objective)` adds one (the config's `train.loss`
then accepts its name). The built-in losses are in `losses.py`, the penalties (WGAN-GP, R1,
R2, and those registered) and when they run in `penalties.py`.
"""

from jaxgan import registry
from jaxgan.objectives import losses, penalties
from jaxgan.objectives.objective import Objective

_REGISTRY = registry.Registry('loss', 'train.loss', {o.name: o for o in losses.BUILT_IN})


def register(objective: Objective) -> Objective:
  return _REGISTRY.register(objective.name, objective)


def get(name: str) -> Objective:
  return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
  return _REGISTRY.names()


__all__ = ['Objective', 'get', 'losses', 'names', 'penalties', 'register']
