"""A GAN objective: a pair of D and G losses on D's logits."""

import dataclasses
from collections.abc import Callable

import jax


@dataclasses.dataclass(frozen=True)
class Objective:
  """`d_loss(real_logits, fake_logits, label_smoothing)` is minimised by D, `g_loss(fake_logits)`
  by G; logits have shape (N,). `label_smoothing` says whether d_loss accepts s > 0.

  A loss whose G side compares fakes with reals (relativistic losses: RaGAN, RpGAN) sets
  `g_needs_real`: G's step then also runs D on a real batch and calls
  `g_loss(fake_logits, real_logits)`.
  """

  name: str
  d_loss: Callable[[jax.Array, jax.Array, float], jax.Array]
  g_loss: Callable[..., jax.Array]
  label_smoothing: bool = False
  g_needs_real: bool = False

  def g_loss_of(self, fake_logits: jax.Array, real_logits: jax.Array | None) -> jax.Array:
    """G's loss, given D's logits on the real batch where this loss needs them."""
    return self.g_loss(fake_logits, real_logits) if self.g_needs_real else self.g_loss(fake_logits)
