"""GAN objectives by name: each a pair of D and G losses on D's logits; penalties apart.

`get(name)` returns an `Objective`; `register(objective)` adds one (the config's `train.loss`
then accepts its name). The five built-in losses are in `losses.py`, the gradient penalties
(WGAN-GP, R1) in `penalties.py`.
"""

import dataclasses
from collections.abc import Callable

import jax

LossFn = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class Objective:
  """`d_loss(real_logits, fake_logits, label_smoothing)` is minimised by D, `g_loss(fake_logits)`
  by G; logits have shape (N,). `label_smoothing` says whether d_loss accepts s > 0."""

  name: str
  d_loss: Callable[[jax.Array, jax.Array, float], jax.Array]
  g_loss: Callable[[jax.Array], jax.Array]
  label_smoothing: bool = False


_REGISTRY: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
  _REGISTRY[objective.name] = objective
  return objective


def get(name: str) -> Objective:
  if name not in _REGISTRY:
    raise ValueError(f'unknown loss {name!r}; expected one of {", ".join(names())}')
  return _REGISTRY[name]


def names() -> tuple[str, ...]:
  return tuple(_REGISTRY)


from jaxgan.objectives import losses, penalties  # noqa: E402  (they register themselves)

__all__ = ['Objective', 'get', 'losses', 'names', 'penalties', 'register']
