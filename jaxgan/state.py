"""The whole training state of a GAN as one immutable pytree."""

import dataclasses
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

PyTree = Any


@dataclasses.dataclass(frozen=True)
class GAN:
  """What stays fixed during training: the two networks, their optimizers and the schedule.

  `generator(z, train)` maps latents to images and `discriminator(x, train)` images to logits
  (N,); both are flax modules whose non-parameter collections (e.g. batch_stats) are mutable in
  training. `balance='loss_ratio'` skips G's update while g_loss * balance_a < d_loss and D's
  update while d_loss * balance_b < g_loss.

  Regularisers (0 = off): `gp_weight` (WGAN-GP), `r1_weight` (gamma of R1, applied on every
  `r1_every`-th D update, scaled by r1_every), `label_smoothing` (real target 1 - s, BCE only).
  `ema_decay` > 0 keeps an exponential moving average of G's params from step `ema_start` on.
  `num_classes` > 0 makes the GAN conditional: both networks take `labels=` (N,) int32.
  """

  generator: nn.Module
  discriminator: nn.Module
  g_optimizer: optax.GradientTransformation
  d_optimizer: optax.GradientTransformation
  latent_dim: int = 100
  latent_dist: str = 'gaussian'  # or 'uniform' on [-1, 1]
  loss: str = 'non_saturating'
  d_steps: int = 1
  g_steps: int = 1
  balance: str = 'none'
  balance_a: float = 1.5
  balance_b: float = 2.0
  gp_weight: float = 0.0
  r1_weight: float = 0.0
  r1_every: int = 1
  label_smoothing: float = 0.0
  ema_decay: float = 0.0
  ema_start: int = 0
  num_classes: int = 0

  def sample_latent(self, key: jax.Array, n: int) -> jax.Array:
    """n latent vectors from the configured distribution."""
    if self.latent_dist == 'gaussian':
      return jax.random.normal(key, (n, self.latent_dim))
    if self.latent_dist == 'uniform':
      return jax.random.uniform(key, (n, self.latent_dim), minval=-1.0, maxval=1.0)
    raise ValueError(f'unknown latent_dist {self.latent_dist!r}')


@flax.struct.dataclass
class GANState:
  """Parameters, other variable collections (batch stats) and optimizer state of G and D.

  `rng` is fixed; the key for step t is `fold_in(rng, t)`, so a restored state continues the
  same random stream. `g_ema_params` (same tree as g_params) is the moving average of G's
  params when `GAN.ema_decay` > 0 and equal to g_params otherwise: it is always there, so the
  state's structure, and the checkpoints', does not depend on the config.
  """

  step: jax.Array
  rng: jax.Array
  g_params: PyTree
  g_vars: PyTree  # non-parameter collections, e.g. {'batch_stats': ...}
  g_opt_state: PyTree
  d_params: PyTree
  d_vars: PyTree
  d_opt_state: PyTree
  g_ema_params: PyTree


def init_state(gan: GAN, rng: jax.Array, image_shape: tuple[int, ...]) -> GANState:
  """Initialises both networks and optimizers; jit it to place the state where you want."""
  init_key, g_key, d_key = jax.random.split(rng, 3)
  # Conditional networks need labels at init to create their class embeddings.
  labels = {'labels': jnp.zeros((2,), jnp.int32)} if gan.num_classes else {}
  g_vars = gan.generator.init(g_key, jnp.zeros((2, gan.latent_dim)), train=True, **labels)
  d_vars = gan.discriminator.init(d_key, jnp.zeros((2, *image_shape)), train=True, **labels)
  g_params, g_rest = _split_params(g_vars)
  d_params, d_rest = _split_params(d_vars)
  return GANState(
    step=jnp.zeros((), jnp.int32),
    rng=init_key,
    g_params=g_params,
    g_vars=g_rest,
    g_opt_state=gan.g_optimizer.init(g_params),
    d_params=d_params,
    d_vars=d_rest,
    d_opt_state=gan.d_optimizer.init(d_params),
    g_ema_params=jax.tree.map(jnp.copy, g_params),  # distinct buffers: the state is donated
  )


def _split_params(variables: PyTree) -> tuple[PyTree, dict]:
  rest = {k: v for k, v in variables.items() if k != 'params'}
  return variables['params'], rest
