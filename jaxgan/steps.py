"""Pure training steps. Each differentiates one network's loss w.r.t. that network's params only.

- `d_step`: D learns to tell real from fake. The fake batch is a constant; G is untouched.
- `g_step`: G learns to fool D. D's params are closed over as constants, and the batch
  statistics D computes on the fake batch are thrown away, so D is unchanged.
- `train_step`: `gan.d_steps` D steps then `gan.g_steps` G steps, with optional loss balancing
  decided on device. Jit it (the trainer does, with the state donated).

All functions are pure: (gan, state, batch) -> (new state, metrics); metrics are scalars on
device. `gan` is a `jaxgan.gan.GAN`, `state` a `jaxgan.state.GANState`. Networks with
stochastic layers (dropout, noise inputs) get RNG streams from `key`, which `train_step` folds
from the state's RNG and the step, so a resumed run draws the same numbers. So do the
augmentations (`gan.augment`) of every image D sees, in both steps and in the penalties.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import augment as augment_lib
from jaxgan.gan import GAN, PyTree
from jaxgan.objectives import penalties
from jaxgan.state import GANState

Metrics = dict[str, jax.Array]

# Which stream of a sub-step's key feeds what; fixed so that each draw keeps its numbers.
_GP_KEY, _LABEL_KEY, _NET_KEY, _AUG_KEY = 1, 2, 3, 4
# The network calls of one sub-step, each with RNG streams of its own.
_G_PASS, _D_REAL, _D_FAKE, _D_OTHER = range(4)


def apply(
  module: nn.Module,
  params: PyTree,
  vars_: dict,
  x: jax.Array,
  train: bool,
  labels: jax.Array | None = None,
  rngs: dict[str, jax.Array] | None = None,
):
  """Runs `module`; returns (output, non-param collections as updated by this call).

  `labels` (N,) int32 are passed on to conditional networks; None for unconditional ones.
  `rngs` are the RNG streams of stochastic layers (training only).
  """
  variables = {'params': params, **vars_}
  kw = {} if labels is None else {'labels': labels}
  if rngs:
    kw['rngs'] = rngs
  if not train or not vars_:
    return module.apply(variables, x, train=train, **kw), vars_
  out, updates = module.apply(variables, x, train=True, mutable=list(vars_), **kw)
  return out, {**vars_, **updates}


def _net_rngs(gan: GAN, key: jax.Array | None, call: int) -> dict[str, jax.Array] | None:
  if key is None:
    return None
  return gan.rngs(jax.random.fold_in(jax.random.fold_in(key, _NET_KEY), call))


def _augmenter(gan: GAN, state: GANState, key: jax.Array | None) -> Callable:
  """(images, call) -> the images as D sees them in network call `call` of this sub-step:
  augmented with a draw of their own, or as they are when gan.augment is off."""
  ops = gan.augment_ops
  if not ops:
    return lambda x, call: x
  if key is None:
    raise ValueError('gan.augment is on: pass key= to draw the augmentations')
  p = _augment_p(gan, state)
  base = jax.random.fold_in(key, _AUG_KEY)
  return lambda x, call: augment_lib.augment(x, jax.random.fold_in(base, call), ops, p)


def _augment_p(gan: GAN, state: GANState):
  return state.ada['p'] if gan.adaptive else gan.augment_p


def _update(
  optimizer: optax.GradientTransformation,
  params: PyTree,
  opt_state: PyTree,
  grads: PyTree,
  vars_: PyTree,
  new_vars: PyTree,
  skip: jax.Array | None,
) -> tuple[PyTree, PyTree, PyTree]:
  """(params, opt_state, vars) after one optimizer update; all three unchanged where `skip`.

  `vars_` are the network's other collections before and after its forward passes (batch
  stats): a skipped update (loss balancing) keeps the old ones too.
  """
  updates, new_opt_state = optimizer.update(grads, opt_state, params)
  new = optax.apply_updates(params, updates), new_opt_state, new_vars
  if skip is None:
    return new
  return jax.tree.map(lambda o, n: jnp.where(skip, o, n), (params, opt_state, vars_), new)


def _skipped(skip: jax.Array | None) -> jax.Array:
  return jnp.zeros((), jnp.float32) if skip is None else skip.astype(jnp.float32)


def _d_penalties(gan: GAN, state: GANState, d_fn, real, fake, key, substep) -> Metrics:
  """The gradient penalties of one D update that the GAN asks for, unweighted."""
  out = {}
  if gan.gp_weight:  # interpolates are scored with the real labels
    out['gp'] = penalties.gradient_penalty(d_fn, real, fake, jax.random.fold_in(key, _GP_KEY))
  if gan.r1_weight:
    # Lazy R1 (StyleGAN2): on every r1_every-th D update, decided on device from the step;
    # lax.cond skips the double backward pass on the other updates.
    r1_due = (state.step * gan.d_steps + substep) % gan.r1_every == 0
    out['r1'] = jax.lax.cond(
      r1_due, lambda: penalties.r1_penalty(d_fn, real), lambda: jnp.zeros((), jnp.float32)
    )
  return out


def _d_outputs(gan: GAN, out) -> tuple[jax.Array, jax.Array | None]:
  """(logits, InfoGAN code logits or None) of one D call."""
  return out if gan.info else (out, None)


Codes = tuple[jax.Array | None, jax.Array | None]


def info_codes(gan: GAN, z: jax.Array, categorical: jax.Array | None) -> Codes | None:
  """InfoGAN's codes of a fake batch: (categorical (N,) or None, continuous (N, C) or None);
  the continuous ones are the first gan.latent_continuous dims of z. None without InfoGAN."""
  if not gan.info:
    return None
  return categorical, (z[:, : gan.latent_continuous] if gan.latent_continuous else None)


def _info_loss(gan: GAN, code_out: jax.Array, codes: Codes) -> jax.Array:
  """InfoGAN's term: -log Q(codes | fake) less constants, Q being D's code head: the
  categorical code's cross-entropy plus half the squared error of the continuous ones (a
  Gaussian of unit variance, as InfoGAN fixes it)."""
  categorical, continuous = codes
  k = gan.latent_classes
  loss = jnp.zeros((), jnp.float32)
  if k:
    loss += optax.softmax_cross_entropy_with_integer_labels(code_out[:, :k], categorical).mean()
  if gan.latent_continuous:
    loss += 0.5 * jnp.mean(jnp.sum(jnp.square(code_out[:, k:] - continuous), axis=-1))
  return loss


def _weighted(gan: GAN, loss: jax.Array, terms: Metrics) -> jax.Array:
  total = loss
  if 'info' in terms:
    total = total + gan.info_weight * terms['info']
  if 'gp' in terms:
    total = total + gan.gp_weight * terms['gp']
  if 'r1' in terms:  # gamma / 2, times r1_every so lazy R1 keeps the same average strength
    total = total + 0.5 * gan.r1_weight * gan.r1_every * terms['r1']
  return total


def d_step(
  gan: GAN,
  state: GANState,
  real: jax.Array,
  fake: jax.Array,
  real_labels: jax.Array | None = None,
  fake_labels: jax.Array | None = None,
  key: jax.Array | None = None,
  substep: int = 0,
  codes: Codes | None = None,
) -> tuple[GANState, Metrics]:
  """One D update on a real and a fake batch (each its own forward pass, as in DCGAN).

  `key` feeds the gradient penalty's interpolates and D's RNG streams (needed when
  gan.gp_weight > 0 or D is stochastic); `substep`, this update's index within the iteration,
  counts D updates for lazy R1. The metric `d_loss` is the adversarial loss; the penalties are
  reported apart as `gp` and `r1`. With gan.augment on, D sees augmented images everywhere
  (the penalties take their gradients w.r.t. the images before augmentation), and the metrics
  add `augment_p` and `ada_rt`, ADA's overfitting heuristic: the mean sign of D's logits on
  the (augmented) real batch. With InfoGAN's codes (gan.info), `codes` are the fake batch's
  (`info_codes`), and D's code head learns them (metric `info`, weighted by gan.info_weight).
  """
  if gan.gp_weight and key is None:
    raise ValueError('gan.gp_weight > 0: pass key= to draw the interpolates')
  fake = jax.lax.stop_gradient(fake)
  objective = gan.objective
  aug = _augmenter(gan, state, key)

  def loss_fn(d_params):
    def d(x, vars_, labels, call):
      rngs = _net_rngs(gan, key, call)
      out, vars_ = apply(gan.discriminator, d_params, vars_, x, True, labels, rngs)
      return _d_outputs(gan, out), vars_

    (real_logits, _), d_vars = d(aug(real, _D_REAL), state.d_vars, real_labels, _D_REAL)
    (fake_logits, fake_codes), d_vars = d(aug(fake, _D_FAKE), d_vars, fake_labels, _D_FAKE)
    loss = objective.d_loss(real_logits, fake_logits, gan.label_smoothing)

    def d_fn(x):  # D on other inputs; its stat updates are dropped (not a pass over data)
      return d(aug(x, _D_OTHER), d_vars, real_labels, _D_OTHER)[0][0]

    terms = _d_penalties(gan, state, d_fn, real, fake, key, substep)
    if gan.info:
      terms['info'] = _info_loss(gan, fake_codes, codes)
    return _weighted(gan, loss, terms), (loss, terms, d_vars, real_logits, fake_logits)

  (_, (loss, terms, d_vars, real_logits, fake_logits)), grads = jax.value_and_grad(
    loss_fn, has_aux=True
  )(state.d_params)
  skip = None
  if gan.balance == 'loss_ratio':  # against G's loss on the same fake logits
    skip = loss * gan.balance_b < objective.g_loss(fake_logits)
  d_params, d_opt_state, d_vars = _update(
    gan.d_optimizer, state.d_params, state.d_opt_state, grads, state.d_vars, d_vars, skip
  )
  new = state.replace(d_params=d_params, d_vars=d_vars, d_opt_state=d_opt_state)
  metrics = {
    'd_loss': loss,
    'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
    'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
    'd_grad_norm': optax.tree.norm(grads),
    'd_skipped': _skipped(skip),
    **terms,
  }
  if gan.augment_ops:
    metrics['augment_p'] = jnp.asarray(_augment_p(gan, state), jnp.float32)
    metrics['ada_rt'] = jnp.mean(jnp.sign(real_logits.astype(jnp.float32)))
  return new, metrics


def _generate_with_vjp(gan: GAN, state: GANState, z, labels=None, key=None):
  """G's training-mode forward pass; returns (fake, vjp w.r.t. g_params, updated g_vars)."""
  rngs = _net_rngs(gan, key, _G_PASS)
  return jax.vjp(
    lambda p: apply(gan.generator, p, state.g_vars, z, True, labels, rngs),
    state.g_params,
    has_aux=True,
  )


def _g_update(
  gan: GAN,
  state: GANState,
  fake: jax.Array,
  g_vjp: Callable,
  g_vars: dict,
  d_loss: jax.Array | None,
  labels: jax.Array | None = None,
  key: jax.Array | None = None,
  codes: Codes | None = None,
  z: jax.Array | None = None,
) -> tuple[GANState, Metrics]:
  aug = _augmenter(gan, state, key)

  def loss_fn(fake):
    # D's updated batch stats are discarded: only G is trained in this step. G's gradient
    # flows back through the augmentation.
    rngs = _net_rngs(gan, key, _D_FAKE)
    x = aug(fake, _D_FAKE)
    out, _ = apply(gan.discriminator, state.d_params, state.d_vars, x, True, labels, rngs)
    logits, code_logits = _d_outputs(gan, out)
    loss = gan.objective.g_loss(logits)
    total = loss
    if gan.info:
      total += gan.info_weight * _info_loss(gan, code_logits, codes)
    if gan.mode_seeking:
      total += gan.mode_seeking * _mode_seeking_loss(fake, z)
    return total, loss

  (_, loss), d_fake = jax.value_and_grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(d_fake)  # chain rule through G: only G's params get gradients
  skip = None
  if gan.balance == 'loss_ratio' and d_loss is not None:
    skip = loss * gan.balance_a < d_loss
  g_params, g_opt_state, g_vars = _update(
    gan.g_optimizer, state.g_params, state.g_opt_state, grads, state.g_vars, g_vars, skip
  )
  new = state.replace(g_params=g_params, g_vars=g_vars, g_opt_state=g_opt_state)
  metrics = {
    'g_loss': loss,
    'g_grad_norm': optax.tree.norm(grads),
    'g_skipped': _skipped(skip),
  }
  return new, metrics


def _mode_seeking_loss(fake: jax.Array, z: jax.Array) -> jax.Array:
  """MSGAN's term: 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2|), the batch's halves as pairs."""
  h = fake.shape[0] // 2
  image_distance = jnp.mean(jnp.abs(fake[:h] - fake[h : 2 * h]).astype(jnp.float32))
  latent_distance = jnp.mean(jnp.abs(z[:h] - z[h : 2 * h]))
  return 1.0 / (image_distance / latent_distance + 1e-5)


def g_step(
  gan: GAN,
  state: GANState,
  z: jax.Array,
  d_loss: jax.Array | None = None,
  labels: jax.Array | None = None,
  key: jax.Array | None = None,
  codes: jax.Array | None = None,
) -> tuple[GANState, Metrics]:
  """One G update on latents z (and class `labels` if conditional, or InfoGAN's categorical
  code `codes`; its continuous codes are in z).

  `d_loss` (the latest D loss) is needed only for balancing; `key` feeds the networks' RNG
  streams (needed when G or D is stochastic). With gan.mode_seeking, the batch's halves are
  the term's pairs: give them the same labels, as `fake_labels` draws them.
  """
  g_labels = labels if codes is None else codes
  fake, g_vjp, g_vars = _generate_with_vjp(gan, state, z, g_labels, key)
  info = info_codes(gan, z, codes)
  return _g_update(gan, state, fake, g_vjp, g_vars, d_loss, labels, key, info, z)


def ema_update(
  ema: PyTree, params: PyTree, decay: float, step: jax.Array, start: int = 0
) -> PyTree:
  """ema * decay + params * (1 - decay) from `step` >= `start` on; a copy of params before."""
  on = step >= start
  return jax.tree.map(lambda e, p: jnp.where(on, decay * e + (1 - decay) * p, p), ema, params)


def fake_labels(gan: GAN, key: jax.Array, batch: int) -> tuple[jax.Array | None, ...]:
  """(G's labels, D's labels) of the fake batch drawn with `key`: classes, or InfoGAN's
  categorical code (which D does not take); (None, None) for an unconditional GAN. With the
  mode-seeking term, image i and image i + batch // 2 get the same label."""
  if not gan.g_classes:
    return None, None
  # Folded from the latent's key, so the unconditional random stream is unchanged.
  y = gan.sample_labels(jax.random.fold_in(key, _LABEL_KEY), batch)
  if gan.mode_seeking:
    h = batch // 2
    y = jnp.concatenate([y[:h], y[:h], y[2 * h :]])
  return (y, None) if gan.latent_classes else (y, y)


def train_step(
  gan: GAN,
  state: GANState,
  real: jax.Array,
  labels: jax.Array | None = None,
  fake_sharding: jax.sharding.Sharding | None = None,
) -> tuple[GANState, Metrics]:
  """One iteration: `gan.d_steps` D steps, then `gan.g_steps` G steps; increments `step`.

  real: (d_steps, batch, H, W, C) images in [-1, 1], one batch per D step; labels:
  (d_steps, batch) their classes, needed when gan.num_classes > 0 (fakes get uniform random
  classes, as they get InfoGAN codes). The first G step reuses the fake batch of the last D
  step (G has not changed since), as PyTorch's DCGAN does, which saves one generator forward
  pass; further G steps draw fresh latents. Then G's EMA params are updated (or set to G's
  params when EMA is off), and with an adaptive augmentation probability, ADA's accumulators
  and p (`_ada_update`).

  fake_sharding: where G's inputs (batch, ...) go; the trainer splits their batch axis over the
  devices as it splits the real batch's, so that G's passes are split too (without it, the
  compiler can leave G computing the whole batch on every device).
  """
  if gan.num_classes and labels is None:
    raise ValueError('a conditional GAN (num_classes > 0) needs the real batch labels')
  batch = real.shape[1]
  keys = jax.random.split(jax.random.fold_in(state.rng, state.step), gan.d_steps + gan.g_steps)

  def placed(x):
    if x is None or fake_sharding is None:
      return x
    return jax.lax.with_sharding_constraint(x, fake_sharding)

  def fake_inputs(key):
    g_y, d_y = map(placed, fake_labels(gan, key, batch))
    z = placed(gan.sample_latent(key, batch))
    return z, g_y, d_y, info_codes(gan, z, g_y if gan.latent_classes else None)

  d_metrics, g_metrics = [], []
  for i in range(gan.d_steps):
    z, g_y, d_y, codes = fake_inputs(keys[i])
    fake, g_vjp, g_vars = _generate_with_vjp(gan, state, z, g_y, keys[i])
    real_y = None if labels is None else labels[i]
    state, m = d_step(gan, state, real[i], fake, real_y, d_y, keys[i], i, codes)
    d_metrics.append(m)
  for j in range(gan.g_steps):
    key = keys[gan.d_steps + j]
    if j > 0:
      z, g_y, d_y, codes = fake_inputs(key)
      fake, g_vjp, g_vars = _generate_with_vjp(gan, state, z, g_y, key)
    d_loss = d_metrics[-1]['d_loss']
    state, m = _g_update(gan, state, fake, g_vjp, g_vars, d_loss, d_y, key, codes, z)
    g_metrics.append(m)
  metrics = {**_reduce(d_metrics), **_reduce(g_metrics)}
  if gan.ema_decay:
    ema = ema_update(state.g_ema_params, state.g_params, gan.ema_decay, state.step, gan.ema_start)
  else:
    ema = state.g_params
  if gan.adaptive:
    rts = [m['ada_rt'] for m in d_metrics]
    state = state.replace(ada=_ada_update(gan, state.ada, rts, state.step + 1, batch))
  return state.replace(step=state.step + 1, g_ema_params=ema), metrics


def _ada_update(gan: GAN, ada: dict, rts: list[jax.Array], steps_done, batch: int) -> dict:
  """Adds this iteration's D updates to ADA's running mean of sign(D(real)); every
  gan.ada_interval steps, moves p by it (`augment.adjust_p`) and starts the mean again.

  Decided on device, from the step: no host round-trip, and a resumed run (the accumulators
  are in the checkpoint) moves p at the same steps by the same amounts.
  """
  signs = ada['signs'] + jnp.sum(jnp.stack(rts))
  count = ada['count'] + len(rts)
  due = steps_done % gan.ada_interval == 0
  moved = augment_lib.adjust_p(ada['p'], signs / count, gan.ada_target, count * batch, gan.ada_kimg)
  zero = jnp.zeros((), jnp.float32)
  return {
    'p': jnp.where(due, moved, ada['p']),
    'signs': jnp.where(due, zero, signs),
    'count': jnp.where(due, zero, count),
  }


def _reduce(metrics: list[Metrics]) -> Metrics:
  """Means over the sub-steps of one iteration; skip flags are summed into counts."""
  out = {}
  for k in metrics[0]:
    values = jnp.stack([m[k] for m in metrics])
    out[k] = values.sum() if k.endswith('_skipped') else values.mean()
  return out


def multi_step(
  gan: GAN,
  state: GANState,
  real_fn: Callable[[GANState], Any],
  num_steps: int,
  fake_sharding: jax.sharding.Sharding | None = None,
) -> tuple[GANState, Metrics]:
  """`num_steps` train steps fused in one `lax.scan`; `real_fn(state)` gives each step's batches.

  `real_fn` returns the images, or (images, labels) for a conditional GAN. Metrics come back
  stacked along a leading axis of length num_steps. `fake_sharding`: as in `train_step`.
  """

  def body(state, _):
    batch = real_fn(state)
    real, labels = batch if isinstance(batch, tuple) else (batch, None)
    return train_step(gan, state, real, labels, fake_sharding)

  return jax.lax.scan(body, state, length=num_steps)
