"""GAN losses as pure functions of the discriminator's logits (shape (N,)).

`d_loss(kind, real_logits, fake_logits)` is minimised by D, `g_loss(kind, fake_logits)` by G.
"""

import jax
import jax.numpy as jnp

LOSSES = ('non_saturating', 'minimax', 'least_squares', 'hinge', 'wasserstein')


def d_loss(kind: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Discriminator loss: mean over the real batch plus mean over the fake batch."""
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
