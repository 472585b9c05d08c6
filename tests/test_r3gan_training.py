"""R3GAN's training: the RpGAN loss against its written definition."""

import jax
import numpy as np
import pytest

from jaxgan import objectives


def test_rpgan_losses_are_their_definitions():
  r = jax.random.normal(jax.random.PRNGKey(2), (7,))
  f = jax.random.normal(jax.random.PRNGKey(3), (7,)) * 2
  rpgan = objectives.get('rpgan')
  assert rpgan.g_needs_real
  d64, r64, f64 = (lambda a: np.mean(np.log1p(np.exp(-a)))), np.float64(r), np.float64(f)
  np.testing.assert_allclose(rpgan.d_loss(r, f), d64(r64 - f64), rtol=1e-6)
  np.testing.assert_allclose(rpgan.g_loss_of(f, r), d64(f64 - r64), rtol=1e-6)
  # Paired per sample, not averaged first (RaGAN): a permutation of the fakes changes it.
  assert abs(float(rpgan.d_loss(r, f[::-1])) - float(rpgan.d_loss(r, f))) > 1e-3
  # The gradient w.r.t. the logits: -sigmoid(f - r) / n for the real ones, its negation for the
  # fake ones (and the mirror image for G's loss).
  s = jax.nn.sigmoid(f - r) / r.shape[0]
  dr, df = jax.grad(rpgan.d_loss, argnums=(0, 1))(r, f)
  np.testing.assert_allclose(dr, -s, rtol=1e-6)
  np.testing.assert_allclose(df, s, rtol=1e-6)
  gf, gr = jax.grad(rpgan.g_loss_of, argnums=(0, 1))(f, r)
  s = jax.nn.sigmoid(r - f) / r.shape[0]
  np.testing.assert_allclose(gf, -s, rtol=1e-6)
  np.testing.assert_allclose(gr, s, rtol=1e-6)
  with pytest.raises(ValueError, match='label_smoothing needs a BCE loss'):
    rpgan.d_loss(r, f, 0.1)
