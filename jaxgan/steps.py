"""Pure training steps. Each differentiates one network's loss w.r.t. that network's params only.

- `d_step`: D learns to tell real from fake. The fake batch is a constant; G is untouched.
- `g_step`: G learns to fool D. D's params are closed over as constants, and the batch
  statistics D computes on the fake batch are thrown away, so D is unchanged.
- `train_step`: `gan.d_steps` D steps then `gan.g_steps` G steps, with optional loss balancing
  decided on device. Jit it (the trainer does, with the state donated).

All functions are pure: (gan, state, batch) -> (new state, metrics); metrics are scalars on
device. `gan` is a `jaxgan.state.GAN`, `state` a `jaxgan.state.GANState`.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import losses
from jaxgan.state import GAN, GANState, PyTree

Metrics = dict[str, jax.Array]


def apply(
  module: nn.Module,
  params: PyTree,
  vars_: dict,
  x: jax.Array,
  train: bool,
  labels: jax.Array | None = None,
):
  """Runs `module`; returns (output, non-param collections as updated by this call).

  `labels` (N,) int32 are passed on to conditional networks; None for unconditional ones.
  """
  variables = {'params': params, **vars_}
  kw = {} if labels is None else {'labels': labels}
  if not train or not vars_:
    return module.apply(variables, x, train=train, **kw), vars_
  out, updates = module.apply(variables, x, train=True, mutable=list(vars_), **kw)
  return out, {**vars_, **updates}


def _keep_if(skip: jax.Array, old: PyTree, new: PyTree) -> PyTree:
  return jax.tree.map(lambda o, n: jnp.where(skip, o, n), old, new)


def d_step(
  gan: GAN,
  state: GANState,
  real: jax.Array,
  fake: jax.Array,
  real_labels: jax.Array | None = None,
  fake_labels: jax.Array | None = None,
  key: jax.Array | None = None,
  substep: int = 0,
) -> tuple[GANState, Metrics]:
  """One D update on a real and a fake batch (each its own forward pass, as in DCGAN).

  `key` draws the gradient penalty's interpolates (needed when gan.gp_weight > 0); `substep`,
  this update's index within the iteration, counts D updates for lazy R1. The metric `d_loss`
  is the adversarial loss; the penalties are reported apart as `gp` and `r1`.
  """
  if gan.gp_weight and key is None:
    raise ValueError('gan.gp_weight > 0: pass key= to draw the interpolates')
  fake = jax.lax.stop_gradient(fake)

  def loss_fn(d_params):
    real_logits, d_vars = apply(gan.discriminator, d_params, state.d_vars, real, True, real_labels)
    fake_logits, d_vars = apply(gan.discriminator, d_params, d_vars, fake, True, fake_labels)
    loss = losses.d_loss(gan.loss, real_logits, fake_logits, gan.label_smoothing)

    def d_fn(x):  # D on other inputs; its stat updates are dropped (not a pass over data)
      return apply(gan.discriminator, d_params, d_vars, x, True, real_labels)[0]

    penalties = {}
    if gan.gp_weight:  # interpolates are scored with the real labels
      penalties['gp'] = losses.gradient_penalty(d_fn, real, fake, key)
    if gan.r1_weight:
      # Lazy R1 (StyleGAN2): on every r1_every-th D update, decided on device from the step;
      # lax.cond skips the double backward pass on the other updates.
      r1_due = (state.step * gan.d_steps + substep) % gan.r1_every == 0
      penalties['r1'] = jax.lax.cond(
        r1_due, lambda: losses.r1_penalty(d_fn, real), lambda: jnp.zeros((), jnp.float32)
      )
    total = loss
    if 'gp' in penalties:
      total = total + gan.gp_weight * penalties['gp']
    if 'r1' in penalties:  # gamma / 2, times r1_every so lazy R1 keeps the same average strength
      total = total + 0.5 * gan.r1_weight * gan.r1_every * penalties['r1']
    return total, (loss, penalties, d_vars, real_logits, fake_logits)

  (_, (loss, penalties, d_vars, real_logits, fake_logits)), grads = jax.value_and_grad(
    loss_fn, has_aux=True
  )(state.d_params)
  updates, opt_state = gan.d_optimizer.update(grads, state.d_opt_state, state.d_params)
  new = state.replace(
    d_params=optax.apply_updates(state.d_params, updates), d_vars=d_vars, d_opt_state=opt_state
  )
  # G's loss on the same fake logits, for the balancing rule.
  g_loss = losses.g_loss(gan.loss, fake_logits)
  skip = jnp.asarray(False)
  if gan.balance == 'loss_ratio':
    skip = loss * gan.balance_b < g_loss
    new = _keep_if(skip, state, new)
  metrics = {
    'd_loss': loss,
    'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
    'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
    'd_grad_norm': optax.tree.norm(grads),
    'd_skipped': skip.astype(jnp.float32),
    **penalties,
  }
  return new, metrics


def _generate_with_vjp(gan: GAN, state: GANState, z: jax.Array, labels: jax.Array | None = None):
  """G's training-mode forward pass; returns (fake, vjp w.r.t. g_params, updated g_vars)."""
  return jax.vjp(
    lambda p: apply(gan.generator, p, state.g_vars, z, True, labels), state.g_params, has_aux=True
  )


def _g_update(
  gan: GAN,
  state: GANState,
  fake: jax.Array,
  g_vjp: Callable,
  g_vars: dict,
  d_loss: jax.Array | None,
  labels: jax.Array | None = None,
) -> tuple[GANState, Metrics]:
  def loss_fn(fake):
    # D's updated batch stats are discarded: only G is trained in this step.
    logits, _ = apply(gan.discriminator, state.d_params, state.d_vars, fake, True, labels)
    return losses.g_loss(gan.loss, logits)

  loss, d_fake = jax.value_and_grad(loss_fn)(fake)
  (grads,) = g_vjp(d_fake)  # chain rule through G: only G's params get gradients
  updates, opt_state = gan.g_optimizer.update(grads, state.g_opt_state, state.g_params)
  new = state.replace(
    g_params=optax.apply_updates(state.g_params, updates), g_vars=g_vars, g_opt_state=opt_state
  )
  skip = jnp.asarray(False)
  if gan.balance == 'loss_ratio' and d_loss is not None:
    skip = loss * gan.balance_a < d_loss
    new = _keep_if(skip, state, new)
  metrics = {
    'g_loss': loss,
    'g_grad_norm': optax.tree.norm(grads),
    'g_skipped': skip.astype(jnp.float32),
  }
  return new, metrics


def g_step(
  gan: GAN,
  state: GANState,
  z: jax.Array,
  d_loss: jax.Array | None = None,
  labels: jax.Array | None = None,
) -> tuple[GANState, Metrics]:
  """One G update on latents z (and class `labels` if conditional).

  `d_loss` (the latest D loss) is needed only for balancing.
  """
  fake, g_vjp, g_vars = _generate_with_vjp(gan, state, z, labels)
  return _g_update(gan, state, fake, g_vjp, g_vars, d_loss, labels)


def ema_update(
  ema: PyTree, params: PyTree, decay: float, step: jax.Array, start: int = 0
) -> PyTree:
  """ema * decay + params * (1 - decay) from `step` >= `start` on; a copy of params before."""
  on = step >= start
  return jax.tree.map(lambda e, p: jnp.where(on, decay * e + (1 - decay) * p, p), ema, params)


def train_step(
  gan: GAN, state: GANState, real: jax.Array, labels: jax.Array | None = None
) -> tuple[GANState, Metrics]:
  """One iteration: `gan.d_steps` D steps, then `gan.g_steps` G steps; increments `step`.

  real: (d_steps, batch, H, W, C) images in [-1, 1], one batch per D step; labels:
  (d_steps, batch) their classes, needed when gan.num_classes > 0 (fakes get uniform random
  classes). The first G step reuses the fake batch of the last D step (G has not changed
  since), as PyTorch's DCGAN does, which saves one generator forward pass; further G steps draw
  fresh latents. Then G's EMA params are updated (or set to G's params when EMA is off).
  """
  if gan.num_classes and labels is None:
    raise ValueError('a conditional GAN (num_classes > 0) needs the real batch labels')
  batch = real.shape[1]
  keys = jax.random.split(jax.random.fold_in(state.rng, state.step), gan.d_steps + gan.g_steps)

  def fake_labels(key):
    # Folded from the latent's key, so the unconditional random stream is unchanged.
    if not gan.num_classes:
      return None
    return jax.random.randint(jax.random.fold_in(key, 2), (batch,), 0, gan.num_classes)

  d_metrics, g_metrics = [], []
  for i in range(gan.d_steps):
    y = fake_labels(keys[i])
    fake, g_vjp, g_vars = _generate_with_vjp(gan, state, gan.sample_latent(keys[i], batch), y)
    real_y = None if labels is None else labels[i]
    gp_key = jax.random.fold_in(keys[i], 1)
    state, m = d_step(gan, state, real[i], fake, real_y, y, key=gp_key, substep=i)
    d_metrics.append(m)
  for j in range(gan.g_steps):
    if j > 0:
      y = fake_labels(keys[gan.d_steps + j])
      z = gan.sample_latent(keys[gan.d_steps + j], batch)
      fake, g_vjp, g_vars = _generate_with_vjp(gan, state, z, y)
    state, m = _g_update(gan, state, fake, g_vjp, g_vars, d_metrics[-1]['d_loss'], y)
    g_metrics.append(m)
  metrics = {**_reduce(d_metrics), **_reduce(g_metrics)}
  if gan.ema_decay:
    ema = ema_update(state.g_ema_params, state.g_params, gan.ema_decay, state.step, gan.ema_start)
  else:
    ema = state.g_params
  return state.replace(step=state.step + 1, g_ema_params=ema), metrics


def _reduce(metrics: list[Metrics]) -> Metrics:
  """Means over the sub-steps of one iteration; skip flags are summed into counts."""
  out = {}
  for k in metrics[0]:
    values = jnp.stack([m[k] for m in metrics])
    out[k] = values.sum() if k.endswith('_skipped') else values.mean()
  return out


def multi_step(
  gan: GAN, state: GANState, real_fn: Callable[[GANState], Any], num_steps: int
) -> tuple[GANState, Metrics]:
  """`num_steps` train steps fused in one `lax.scan`; `real_fn(state)` gives each step's batches.

  `real_fn` returns the images, or (images, labels) for a conditional GAN. Metrics come back
  stacked along a leading axis of length num_steps.
  """

  def body(state, _):
    batch = real_fn(state)
    real, labels = batch if isinstance(batch, tuple) else (batch, None)
    return train_step(gan, state, real, labels)

  return jax.lax.scan(body, state, length=num_steps)
