"""The built-in GAN losses, each an `Objective` (D's and G's loss on D's logits), registered
under its name by jaxgan.objectives."""

import jax
import jax.numpy as jnp

from jaxgan.objectives.objective import Objective


def _no_smoothing(name: str, s: float) -> None:
  if s:
    raise ValueError(f'label_smoothing needs a BCE loss (non_saturating, minimax), not {name!r}')


def bce_d_loss(real_logits: jax.Array, fake_logits: jax.Array, label_smoothing: float = 0.0):
  """Binary cross-entropy with labels real=1, fake=0: -log sigmoid(r) - log(1 - sigmoid(f)).

  `label_smoothing` s > 0 makes the real target 1 - s (one-sided: fakes stay at 0, Salimans et
  al. 2016), so D is not pushed towards over-confident logits on real data.
  """
  if label_smoothing:
    s = label_smoothing
    real_term = (1 - s) * jax.nn.softplus(-real_logits) + s * jax.nn.softplus(real_logits)
    return jnp.mean(real_term) + jnp.mean(jax.nn.softplus(fake_logits))
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def _least_squares_d(real_logits, fake_logits, label_smoothing=0.0):
  _no_smoothing('least_squares', label_smoothing)
  return 0.5 * jnp.mean((real_logits - 1) ** 2) + 0.5 * jnp.mean(fake_logits**2)


def _hinge_d(real_logits, fake_logits, label_smoothing=0.0):
  _no_smoothing('hinge', label_smoothing)
  return jnp.mean(jax.nn.relu(1 - real_logits)) + jnp.mean(jax.nn.relu(1 + fake_logits))


def _wasserstein_d(real_logits, fake_logits, label_smoothing=0.0):
  _no_smoothing('wasserstein', label_smoothing)
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def _mean_negated(fake_logits):
  return -jnp.mean(fake_logits)


def _rpgan_d(real_logits, fake_logits, label_smoothing=0.0):
  _no_smoothing('rpgan', label_smoothing)
  return jnp.mean(jax.nn.softplus(-(real_logits - fake_logits)))


def _rpgan_g(fake_logits, real_logits):
  return jnp.mean(jax.nn.softplus(-(fake_logits - real_logits)))


BUILT_IN = (
  Objective(
    'non_saturating',
    bce_d_loss,
    lambda f: jnp.mean(jax.nn.softplus(-f)),  # -log sigmoid(f)
    label_smoothing=True,
  ),
  Objective(
    'minimax',
    bce_d_loss,
    lambda f: -jnp.mean(jax.nn.softplus(f)),  # log(1 - sigmoid(f)): saturates early on
    label_smoothing=True,
  ),
  Objective('least_squares', _least_squares_d, lambda f: 0.5 * jnp.mean((f - 1) ** 2)),
  Objective('hinge', _hinge_d, _mean_negated),
  Objective('wasserstein', _wasserstein_d, _mean_negated),
  # The relativistic pairing GAN (Jolicoeur-Martineau 2019; R3GAN's loss): each real logit is
  # compared with the fake one at the same index, so G's loss needs D's logits on real images.
  Objective('rpgan', _rpgan_d, _rpgan_g, g_needs_real=True),
)
