"""GAN losses as pure functions of the discriminator's logits (shape (N,)).

`d_loss(kind, real_logits, fake_logits)` is minimised by D, `g_loss(kind, fake_logits)` by G.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

LOSSES = ('non_saturating', 'minimax', 'least_squares', 'hinge', 'wasserstein')


def d_loss(
  kind: str, real_logits: jax.Array, fake_logits: jax.Array, label_smoothing: float = 0.0
) -> jax.Array:
  """Discriminator loss: mean over the real batch plus mean over the fake batch.

  `label_smoothing` s > 0 (BCE losses only) makes the real target 1 - s (one-sided: fakes stay
  at 0, Salimans et al. 2016), so D is not pushed towards over-confident logits on real data.
  """
  if label_smoothing and kind not in ('non_saturating', 'minimax'):
    raise ValueError(f'label_smoothing needs a BCE loss (non_saturating, minimax), not {kind!r}')
  if kind in ('non_saturating', 'minimax') and label_smoothing:
    s = label_smoothing
    real_term = (1 - s) * jax.nn.softplus(-real_logits) + s * jax.nn.softplus(real_logits)
    return jnp.mean(real_term) + jnp.mean(jax.nn.softplus(fake_logits))
  if kind in ('non_saturating', 'minimax'):
    # Binary cross-entropy with labels real=1, fake=0: -log sigmoid(r) - log(1 - sigmoid(f)).
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
  if kind == 'least_squares':
    return 0.5 * jnp.mean((real_logits - 1) ** 2) + 0.5 * jnp.mean(fake_logits**2)
  if kind == 'hinge':
    return jnp.mean(jax.nn.relu(1 - real_logits)) + jnp.mean(jax.nn.relu(1 + fake_logits))
  if kind == 'wasserstein':
    return jnp.mean(fake_logits) - jnp.mean(real_logits)
  raise ValueError(f'unknown loss {kind!r}; expected one of {LOSSES}')


def g_loss(kind: str, fake_logits: jax.Array) -> jax.Array:
  """Generator loss on D's logits for generated images."""
  if kind == 'non_saturating':
    return jnp.mean(jax.nn.softplus(-fake_logits))  # -log sigmoid(f)
  if kind == 'minimax':
    return -jnp.mean(jax.nn.softplus(fake_logits))  # log(1 - sigmoid(f)), saturates early on
  if kind == 'least_squares':
    return 0.5 * jnp.mean((fake_logits - 1) ** 2)
  if kind in ('hinge', 'wasserstein'):
    return -jnp.mean(fake_logits)
  raise ValueError(f'unknown loss {kind!r}; expected one of {LOSSES}')


# --- Penalties ------------------------------------------------------------------------------
# Each takes `d_fn`, a closure images -> logits (N,) over D's current params, so that the
# D step's gradient flows through the penalty into those params (a gradient of a gradient).


def _input_grads(d_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per-example gradients of D's logit w.r.t. its input, flattened to (N, pixels).

  The gradient of the summed logits is per-example because each logit depends only on its own
  image (true for D without batch norm; with it, examples are coupled through batch stats).
  """
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x)
  return grads.reshape(x.shape[0], -1)


def gradient_penalty(
  d_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, key: jax.Array
) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): mean (||grad D(x)|| - 1)^2 at random mixes x of real, fake."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = eps * real + (1 - eps) * fake
  g = _input_grads(d_fn, x_hat)
  # sqrt of a sum with a tiny floor: the norm's gradient is finite even where g = 0.
  norm = jnp.sqrt(jnp.sum(g**2, axis=1) + 1e-12)
  return jnp.mean((norm - 1) ** 2)


def r1_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): mean ||grad_x D(x)||^2 on real data (weight it by gamma / 2)."""
  g = _input_grads(d_fn, real)
  return jnp.mean(jnp.sum(g**2, axis=1))
