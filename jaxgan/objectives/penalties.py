"""Gradient penalties on D. Each takes `d_fn`, a closure images -> logits (N,) over D's current
params, so that the D step's gradient flows through the penalty into those params (a gradient
of a gradient).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


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
