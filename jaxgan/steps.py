"""Pure training steps. Each differentiates one network's loss w.r.t. that network's params only.

- `d_step`: D learns to tell real from fake. The fake batch is a constant; G is untouched.
- `g_step`: G learns to fool D. D's params are closed over as constants, and the batch
  statistics D computes on the fake batch are thrown away, so D is unchanged.
- `train_step`: one iteration of phases, as StyleGAN2-ADA's training loop runs them:
  `gan.d_steps` times D's main phase (its loss and the penalties run on every update) and D's
  lazy penalties that are due, then `gan.g_steps` times G's main phase and G's lazy penalties
  that are due (`jaxgan.objectives.penalties`); loss balancing decided on device. Jit it (the
  trainer does, with the state donated).

All functions are pure: (gan, state, batch, fake, key) -> (new state, metrics); metrics are
scalars on device. `gan` is a `jaxgan.gan.GAN`, `state` a `jaxgan.state.GANState`, `batch` a
`jaxgan.batch.Batch` and `fake` a `jaxgan.batch.FakeInputs` (or, for D, the `FakeBatch` G made
of them). Networks with stochastic layers (dropout, noise inputs) get RNG streams from `key`,
which `train_step` folds from the state's RNG and the step, so a resumed run draws the same
numbers. So do the augmentations (`gan.augment`) of every image D sees, in both steps and in
the penalties.
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import augment as augment_lib
from jaxgan import schedules
from jaxgan.batch import Batch, FakeBatch, FakeInputs
from jaxgan.gan import GAN, PyTree
from jaxgan.objectives import penalties as penalties_lib
from jaxgan.state import GANState

Metrics = dict[str, jax.Array]

# Which stream of a sub-step's key feeds what; fixed so that each draw keeps its numbers
# (1 is the gradient penalty's, in jaxgan.objectives.penalties; 2 the fake labels', in GAN).
_NET_KEY, _AUG_KEY = 3, 4
# The network calls of one sub-step, each with RNG streams of its own.
_G_PASS, _D_REAL, _D_FAKE, _D_OTHER, _G_OTHER = range(5)


def apply(module: nn.Module, params: PyTree, vars_: dict, x: jax.Array, train: bool, **kw):
  """Runs `module`; returns (output, non-param collections as updated by this call).

  `kw` go to the module: `labels=` (N,) int32 for conditional networks (None: left out),
  `rngs=` the RNG streams of stochastic layers (training only).
  """
  variables = {'params': params, **vars_}
  kw = {k: v for k, v in kw.items() if v is not None}
  if not train or not vars_:
    return module.apply(variables, x, train=train, **kw), vars_
  out, updates = module.apply(variables, x, train=True, mutable=list(vars_), **kw)
  return out, {**vars_, **updates}


def _net_rngs(gan: GAN, key: jax.Array | None, call: int) -> dict[str, jax.Array] | None:
  if key is None:
    return None
  return gan.rngs(jax.random.fold_in(jax.random.fold_in(key, _NET_KEY), call))


def images_seen(gan: GAN, state: GANState, batch_size: int) -> jax.Array:
  """The real images D has seen before this iteration (`batch_size` a batch, gan.d_steps
  batches an iteration): what schedules run over (`jaxgan.schedules`)."""
  return state.step.astype(jnp.float32) * (batch_size * gan.d_steps)


def _augmenter(gan: GAN, state: GANState, key: jax.Array | None, seen: jax.Array) -> Callable:
  """(images, call) -> the images as D sees them in network call `call` of this sub-step:
  augmented with a draw of their own, or as they are when gan.augment is off."""
  ops = gan.augment_ops
  if not ops:
    return lambda x, call: x
  if key is None:
    raise ValueError('gan.augment is on: pass key= to draw the augmentations')
  p = _augment_p(gan, state, seen)
  base = jax.random.fold_in(key, _AUG_KEY)
  return lambda x, call: augment_lib.augment(x, jax.random.fold_in(base, call), ops, p)


def _augment_p(gan: GAN, state: GANState, seen: jax.Array):
  return state.ada['p'] if gan.adaptive else schedules.value_at(gan.augment_p, seen)


def _update(optimizer: optax.GradientTransformation, params, opt_state, grads, seen) -> tuple:
  """(params, opt_state) after one optimizer update; `seen` sets scheduled hyperparameters
  (`schedules.optimizer`) and is ignored by optimizers without them."""
  if isinstance(optimizer, optax.GradientTransformationExtraArgs):
    updates, new_opt_state = optimizer.update(grads, opt_state, params, images_seen=seen)
  else:
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), new_opt_state


def _d_outputs(gan: GAN, out) -> tuple[jax.Array, jax.Array | None]:
  """(logits, InfoGAN code logits or None) of one D call."""
  return out if gan.info else (out, None)


def _info_loss(gan: GAN, code_out: jax.Array, fake: FakeInputs) -> jax.Array:
  """InfoGAN's term: -log Q(codes | fake) less constants, Q being D's code head: the
  categorical code's cross-entropy plus half the squared error of the continuous ones (a
  Gaussian of unit variance, as InfoGAN fixes it), which are the first dims of z."""
  k, c = gan.latent_classes, gan.latent_continuous
  loss = jnp.zeros((), jnp.float32)
  if k:
    loss += optax.softmax_cross_entropy_with_integer_labels(code_out[:, :k], fake.codes).mean()
  if c:
    loss += 0.5 * jnp.mean(jnp.sum(jnp.square(code_out[:, k:] - fake.z[:, :c]), axis=-1))
  return loss


def _penalties(gan: GAN, net: str, lazy: bool) -> tuple[penalties_lib.Penalty, ...]:
  return tuple(
    p for p in penalties_lib.active(gan) if p.net == net and (p.every_of(gan) > 1) == lazy
  )


def _d_penalty_values(gan: GAN, state: GANState, d: tuple, phase: 'Phase', active) -> tuple:
  """({name: value}, {name: new state}) of D's penalties `active` on `phase` (its real batch
  and constant fakes), D being `d` = (d_params, d_vars) as it sees everything; stats dropped."""
  d_params, d_vars = d
  aug = _augmenter(gan, state, phase.key, images_seen(gan, state, phase.fake.z.shape[0]))

  def net(x, labels=phase.batch.labels):
    rngs = _net_rngs(gan, phase.key, _D_OTHER)
    out, _ = apply(
      gan.discriminator, d_params, d_vars, aug(x, _D_OTHER), True, labels=labels, rngs=rngs
    )
    return _d_outputs(gan, out)[0]

  fake = FakeBatch(jax.lax.stop_gradient(phase.fake_images), phase.fake)
  inputs = penalties_lib.PenaltyInputs(net, phase.batch, fake, phase.key)
  return penalties_lib.evaluate(active, inputs, state.penalty_vars)


def d_step(
  gan: GAN, state: GANState, batch: Batch, fake: FakeBatch, key: jax.Array | None = None
) -> tuple[GANState, Metrics]:
  """D's main phase: one update on a real and a fake batch (each its own forward pass, as in
  DCGAN), with the penalties that run on every D update.

  `key` feeds the penalties (e.g. the gradient penalty's interpolates) and D's RNG streams
  (needed when gan.gp_weight > 0 or D is stochastic). The metric `d_loss` is the adversarial
  loss; the penalties are reported apart under their names (`gp`, `r1`, ...). With
  gan.augment on, D sees augmented images everywhere (the penalties take their gradients
  w.r.t. the images before augmentation), and the metrics add `augment_p` and `ada_rt`, ADA's
  overfitting heuristic: the mean sign of D's logits on the (augmented) real batch. With
  InfoGAN's codes (gan.info), D's code head learns the fake batch's (metric `info`, weighted
  by gan.info_weight). With balancing, the update is skipped while d_loss * balance_b is below
  G's loss on the same fake logits (metric `d_skipped`).
  """
  if gan.gp_weight and key is None:
    raise ValueError('gan.gp_weight > 0: pass key= to draw the interpolates')
  fake_images = jax.lax.stop_gradient(fake.images)
  objective = gan.objective
  seen = images_seen(gan, state, batch.images.shape[0])
  aug = _augmenter(gan, state, key, seen)
  fused = _penalties(gan, 'd', lazy=False)
  phase = Phase(0, key, batch, fake.inputs, fake_images)

  def loss_fn(d_params):
    def d(x, vars_, labels, call):
      rngs = _net_rngs(gan, key, call)
      out, vars_ = apply(gan.discriminator, d_params, vars_, x, True, labels=labels, rngs=rngs)
      return _d_outputs(gan, out), vars_

    (real_logits, _), d_vars = d(aug(batch.images, _D_REAL), state.d_vars, batch.labels, _D_REAL)
    (fake_logits, fake_codes), d_vars = d(
      aug(fake_images, _D_FAKE), d_vars, fake.inputs.labels, _D_FAKE
    )
    loss = objective.d_loss(real_logits, fake_logits, gan.label_smoothing)
    terms, pvars = _d_penalty_values(gan, state, (d_params, d_vars), phase, fused)
    total = loss
    if gan.info:
      terms['info'] = _info_loss(gan, fake_codes, fake.inputs)
      total = total + gan.info_weight * terms['info']
    for p in fused:
      total = total + schedules.value_at(p.weight_of(gan), seen) * terms[p.name]
    return total, (loss, terms, pvars, d_vars, real_logits, fake_logits)

  (_, (loss, terms, pvars, d_vars, real_logits, fake_logits)), grads = jax.value_and_grad(
    loss_fn, has_aux=True
  )(state.d_params)
  d_params, d_opt_state = _update(gan.d_optimizer, state.d_params, state.d_opt_state, grads, seen)
  new = state.replace(
    d_params=d_params,
    d_vars=d_vars,
    d_opt_state=d_opt_state,
    penalty_vars={**state.penalty_vars, **pvars},
  )
  skip = None
  if gan.balance == 'loss_ratio':  # against G's loss on the same fake logits
    skip = loss * gan.balance_b < objective.g_loss_of(fake_logits, real_logits)
    new = _unless(skip, state, new, ('d_params', 'd_opt_state', 'd_vars'))
  metrics = {
    'd_loss': loss,
    'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
    'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
    'd_grad_norm': optax.tree.norm(grads),
    'd_skipped': _skipped(skip),
    **terms,
  }
  if gan.augment_ops:
    metrics['augment_p'] = jnp.asarray(_augment_p(gan, state, seen), jnp.float32)
    metrics['ada_rt'] = jnp.mean(jnp.sign(real_logits.astype(jnp.float32)))
  return new, metrics


def _unless(skip: jax.Array, old: GANState, new: GANState, fields: tuple[str, ...]) -> GANState:
  """`new` with `fields` as in `old` where `skip` (loss balancing skips an update)."""
  kept = jax.tree.map(
    lambda o, n: jnp.where(skip, o, n),
    tuple(getattr(old, f) for f in fields),
    tuple(getattr(new, f) for f in fields),
  )
  return new.replace(**dict(zip(fields, kept, strict=True)))


def _skipped(skip: jax.Array | None) -> jax.Array:
  return jnp.zeros((), jnp.float32) if skip is None else skip.astype(jnp.float32)


class GPass(NamedTuple):
  """G's training-mode forward pass on `fake`: its images, the VJP w.r.t. g_params, and G's
  collections as updated by the pass (kept only if G's update is)."""

  fake: FakeBatch
  vjp: Callable
  vars: dict


def g_forward(gan: GAN, state: GANState, fake: FakeInputs, key: jax.Array | None = None) -> GPass:
  """G's training-mode forward pass, kept for G's update (`g_update`)."""
  rngs = _net_rngs(gan, key, _G_PASS)
  images, vjp, g_vars = jax.vjp(
    lambda p: apply(gan.generator, p, state.g_vars, fake.z, True, labels=fake.g_labels, rngs=rngs),
    state.g_params,
    has_aux=True,
  )
  return GPass(FakeBatch(images, fake), vjp, g_vars)


def g_update(
  gan: GAN, state: GANState, g: GPass, batch: Batch | None = None, key: jax.Array | None = None
) -> tuple[GANState, Metrics]:
  """G's main phase on a forward pass already made (`g_forward`): G's loss on D's logits of
  the fakes (and of `batch`, the real one, where the loss compares them) through D's frozen
  params, with InfoGAN's and MSGAN's terms and G's penalties that run on every update."""
  seen = images_seen(gan, state, g.fake.images.shape[0])
  aug = _augmenter(gan, state, key, seen)
  objective = gan.objective

  def d(x, labels, call):
    # D's updated batch stats are discarded: only G is trained in this step.
    rngs = _net_rngs(gan, key, call)
    out, _ = apply(
      gan.discriminator, state.d_params, state.d_vars, x, True, labels=labels, rngs=rngs
    )
    return _d_outputs(gan, out)

  real_logits = None
  if objective.g_needs_real:  # D's params are constants here: no gradient flows through reals
    if batch is None:
      raise ValueError(f'loss {objective.name!r} compares fakes with reals: pass batch=')
    real_logits = d(aug(batch.images, _D_REAL), batch.labels, _D_REAL)[0]

  def loss_fn(images):
    # G's gradient flows back through the augmentation.
    logits, code_logits = d(aug(images, _D_FAKE), g.fake.inputs.labels, _D_FAKE)
    loss = objective.g_loss_of(logits, real_logits)
    total = loss
    if gan.info:
      total += gan.info_weight * _info_loss(gan, code_logits, g.fake.inputs)
    if gan.mode_seeking:
      total += gan.mode_seeking * _mode_seeking_loss(images, g.fake.inputs.z)
    return total, loss

  (_, loss), d_images = jax.value_and_grad(loss_fn, has_aux=True)(g.fake.images)
  (grads,) = g.vjp(d_images)  # chain rule through G: only G's params get gradients
  fused = _penalties(gan, 'g', lazy=False)
  terms, pvars = {}, {}
  if fused:  # their gradients w.r.t. G's params, added to the adversarial one
    phase = Phase(0, key, batch, g.fake.inputs)
    terms, pgrads, pvars = _g_penalty_grads(gan, state, fused, phase, 1)
    grads = jax.tree.map(jnp.add, grads, pgrads)
  g_params, g_opt_state = _update(gan.g_optimizer, state.g_params, state.g_opt_state, grads, seen)
  new = state.replace(
    g_params=g_params,
    g_vars=g.vars,
    g_opt_state=g_opt_state,
    penalty_vars={**state.penalty_vars, **pvars},
  )
  metrics = {'g_loss': loss, 'g_grad_norm': optax.tree.norm(grads), **terms}
  return new, metrics


def _g_penalty_grads(gan: GAN, state: GANState, active, phase: 'Phase', scale: int):
  """({name: value}, gradient w.r.t. G's params of the weighted sum, times `scale`, {name: new
  state}) of G's penalties `active` on G's images of `phase.fake` (a forward pass of their
  own; G's stats updates dropped)."""
  batch, key, fake = phase.batch, phase.key, phase.fake
  seen = images_seen(gan, state, fake.z.shape[0])

  def loss_fn(g_params):
    rngs = _net_rngs(gan, key, _G_OTHER)

    def g_apply(x, **kw):
      return apply(gan.generator, g_params, state.g_vars, x, True, rngs=rngs, **kw)[0]

    def g(inputs: FakeInputs):
      return g_apply(inputs.z, labels=inputs.g_labels)

    fake_batch = FakeBatch(g(fake), fake)
    inputs = penalties_lib.PenaltyInputs(g, batch, fake_batch, key, apply=g_apply)
    terms, new_states = penalties_lib.evaluate(active, inputs, state.penalty_vars)
    weights = {p.name: scale * schedules.value_at(p.weight_of(gan), seen) for p in active}
    return sum(weights[p.name] * terms[p.name] for p in active), (terms, new_states)

  (_, (terms, new_states)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  return terms, grads, new_states


def _mode_seeking_loss(fake: jax.Array, z: jax.Array) -> jax.Array:
  """MSGAN's term: 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2|), the batch's halves as pairs."""
  h = fake.shape[0] // 2
  image_distance = jnp.mean(jnp.abs(fake[:h] - fake[h : 2 * h]).astype(jnp.float32))
  latent_distance = jnp.mean(jnp.abs(z[:h] - z[h : 2 * h]))
  return 1.0 / (image_distance / latent_distance + 1e-5)


def g_step(
  gan: GAN,
  state: GANState,
  fake: FakeInputs,
  batch: Batch | None = None,
  key: jax.Array | None = None,
) -> tuple[GANState, Metrics]:
  """One G update on G's inputs `fake` (`GAN.sample_inputs`): `g_forward` then `g_update`.

  `batch` (a real batch) is needed when the loss compares fakes with reals
  (`Objective.g_needs_real`); `key` feeds the networks' RNG streams (needed when G or D is
  stochastic). With gan.mode_seeking, the batch's halves are the term's pairs: give them the
  same labels, as `GAN.sample_inputs` draws them.
  """
  return g_update(gan, state, g_forward(gan, state, fake, key), batch, key)


def _lazy(gan: GAN, state: GANState, penalty, phase: 'Phase') -> tuple[GANState, jax.Array]:
  """A lazy penalty's own update (its loss times its interval), when its network's update
  count makes it due; the state as it was otherwise. Returns (state, the penalty or 0)."""
  every = penalty.every_of(gan)  # also the loss's scale: the same average strength
  seen = images_seen(gan, state, phase.fake.z.shape[0])

  def run(state):
    if penalty.net == 'g':
      terms, grads, pvars = _g_penalty_grads(gan, state, (penalty,), phase, every)
      params, opt_state = _update(gan.g_optimizer, state.g_params, state.g_opt_state, grads, seen)
      penalty_vars = {**state.penalty_vars, **pvars}
      new = state.replace(g_params=params, g_opt_state=opt_state, penalty_vars=penalty_vars)
      return new, terms[penalty.name]

    def loss_fn(d_params):
      terms, pvars = _d_penalty_values(gan, state, (d_params, state.d_vars), phase, (penalty,))
      value = terms[penalty.name]
      return every * schedules.value_at(penalty.weight_of(gan), seen) * value, (value, pvars)

    (_, (value, pvars)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    params, opt_state = _update(gan.d_optimizer, state.d_params, state.d_opt_state, grads, seen)
    penalty_vars = {**state.penalty_vars, **pvars}
    return state.replace(d_params=params, d_opt_state=opt_state, penalty_vars=penalty_vars), value

  def skip(state):
    return state, jnp.zeros((), jnp.float32)

  return jax.lax.cond(phase.index % every == 0, run, skip, state)


class Phase(NamedTuple):
  """One sub-step of an iteration: the network's update count `index` (for lazy penalties),
  its key, the real batch, G's inputs and the fake images D saw."""

  index: jax.Array
  key: jax.Array
  batch: Batch
  fake: FakeInputs
  fake_images: jax.Array | None = None


def ema_update(
  ema: PyTree, params: PyTree, decay: float, step: jax.Array, start: int = 0
) -> PyTree:
  """ema * decay + params * (1 - decay) from `step` >= `start` on; a copy of params before."""
  on = step >= start
  return jax.tree.map(lambda e, p: jnp.where(on, decay * e + (1 - decay) * p, p), ema, params)


def train_step(
  gan: GAN, state: GANState, batch: Batch, fake_sharding: jax.sharding.Sharding | None = None
) -> tuple[GANState, Metrics]:
  """One iteration: `gan.d_steps` D updates, then `gan.g_steps` G updates; increments `step`.

  `batch`: (d_steps, N, H, W, C) images in [-1, 1], one batch per D update, and their labels
  (d_steps, N), needed when gan.num_classes > 0 (fakes get labels from `GAN.sample_inputs`,
  as they get InfoGAN codes). G's updates see the last D update's real batch, where the loss
  needs one. The first G update reuses the fake batch of the last D update (G has not changed
  since), as PyTorch's DCGAN does, which saves one generator forward pass; further G updates
  draw fresh inputs. Lazy penalties run after the main phase of their network's update when
  due. Then G's EMA params are updated (or set to G's params when EMA is off), and with an
  adaptive augmentation probability, ADA's accumulators and p (`_ada_update`).

  fake_sharding: where G's inputs (batch, ...) go; the trainer splits their batch axis over the
  devices as it splits the real batch's, so that G's passes are split too (without it, the
  compiler can leave G computing the whole batch on every device).
  """
  if gan.num_classes and batch.labels is None:
    raise ValueError('a conditional GAN (num_classes > 0) needs the real batch labels')
  n = batch.images.shape[1]
  seen = images_seen(gan, state, n)
  keys = jax.random.split(jax.random.fold_in(state.rng, state.step), gan.d_steps + gan.g_steps)
  d_lazy, g_lazy = _penalties(gan, 'd', lazy=True), _penalties(gan, 'g', lazy=True)

  def inputs(key):
    fake = gan.sample_inputs(key, n)
    if fake_sharding is None:
      return fake
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, fake_sharding), fake)

  d_metrics, g_metrics = [], []
  for i in range(gan.d_steps):
    real = jax.tree.map(lambda x, i=i: x[i], batch)
    g = g_forward(gan, state, inputs(keys[i]), keys[i])
    state, m = d_step(gan, state, real, g.fake, keys[i])
    phase = Phase(state.step * gan.d_steps + i, keys[i], real, g.fake.inputs, g.fake.images)
    for p in d_lazy:
      state, m[p.name] = _lazy(gan, state, p, phase)
    d_metrics.append(m)
  for j in range(gan.g_steps):
    key = keys[gan.d_steps + j]
    if j > 0:
      g = g_forward(gan, state, inputs(key), key)
    new, m = g_update(gan, state, g, real, key)
    skip = None
    if gan.balance == 'loss_ratio':
      skip = m['g_loss'] * gan.balance_a < d_metrics[-1]['d_loss']
      new = _unless(skip, state, new, ('g_params', 'g_opt_state', 'g_vars'))
    state = new
    m['g_skipped'] = _skipped(skip)
    phase = Phase(state.step * gan.g_steps + j, key, real, g.fake.inputs)
    for p in g_lazy:
      state, m[p.name] = _lazy(gan, state, p, phase)
    g_metrics.append(m)
  metrics = {**_reduce(d_metrics), **_reduce(g_metrics), **_scheduled(gan, state, seen)}
  decay = _ema_decay(gan, seen, n)
  if decay is None:
    ema = state.g_params
  else:
    ema = ema_update(state.g_ema_params, state.g_params, decay, state.step, gan.ema_start)
  if gan.adaptive:
    rts = [m['ada_rt'] for m in d_metrics]
    state = state.replace(ada=_ada_update(gan, state.ada, rts, state.step + 1, n))
  return state.replace(step=state.step + 1, g_ema_params=ema), metrics


def _ema_decay(gan: GAN, seen: jax.Array, batch_size: int):
  """The EMA's decay this iteration: gan.ema_decay, or from the half-life gan.ema_kimg (in
  thousands of real images, as StyleGAN2 sets it); None: no EMA."""
  if gan.ema_kimg:
    half_life = 1000 * schedules.value_at(gan.ema_kimg, seen)
    return 0.5 ** (batch_size * gan.d_steps / jnp.maximum(half_life, 1e-8))
  return schedules.value_at(gan.ema_decay, seen) if gan.ema_decay else None


def _scheduled(gan: GAN, state: GANState, seen: jax.Array) -> Metrics:
  """The scheduled hyperparameters' values this iteration, as metrics: the GAN's by name, the
  optimizers' as g_lr, d_b2, ... (`schedules.optimizer`)."""
  out = {name: jnp.asarray(s(seen), jnp.float32) for name, s in gan.scheduled().items()}
  for net, opt_state in (('g', state.g_opt_state), ('d', state.d_opt_state)):
    if isinstance(opt_state, schedules.OptState):
      short = {'learning_rate': 'lr'}
      out.update({f'{net}_{short.get(k, k)}': v for k, v in opt_state.values.items()})
  return out


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
  batch_fn: Callable[[GANState], Batch],
  num_steps: int,
  fake_sharding: jax.sharding.Sharding | None = None,
) -> tuple[GANState, Metrics]:
  """`num_steps` train steps fused in one `lax.scan`; `batch_fn(state)` gives each step's
  real batches. Metrics come back stacked along a leading axis of length num_steps.
  `fake_sharding`: as in `train_step`."""

  def body(state, _):
    return train_step(gan, state, batch_fn(state), fake_sharding)

  return jax.lax.scan(body, state, length=num_steps)


__all__ = [
  'Batch',
  'FakeBatch',
  'FakeInputs',
  'GPass',
  'Metrics',
  'apply',
  'd_step',
  'ema_update',
  'g_forward',
  'g_step',
  'g_update',
  'multi_step',
  'train_step',
]
