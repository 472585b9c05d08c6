"""A stylegan2-ada-pytorch network pickle as a jaxgan run folder:
`python -m jaxgan.import_network --pkl=network-snapshot-000100.pkl --workdir=runs/imported`.

The pickle is read without PyTorch and without running the code it carries
(`jaxgan.network_pickle`). The run folder holds config.json, run.json, a checkpoint of the whole
training state, and config.py (a config file that reads config.json back), so that

  python -m jaxgan.sample --workdir=W ...          python -m jaxgan.evaluate --workdir=W ...
  python -m jaxgan.main --config=W/config.py --workdir=W      (resumes: fine-tunes G and D)

What the pickle tells: the networks (`jaxgan.models.stylegan2_official` maps their init
arguments to model keys and their weights to jaxgan's), G, G_ema and D's weights, w_avg and the
constant noise (G_ema's: jaxgan keeps one set of G's buffers), the dataset (resolution, labels,
path, x-flips) and ADA's current p. What it does not: the optimizer states (started fresh: Adam's
moments at zero), the batch size, learning rates, R1 gamma and EMA: those of the official
`cifar` spec (configs/stylegan2_cifar10.py) for a network of its kind (D without residual
shortcuts, or under 32 px), else train.py's `auto` spec at the network's resolution
(configs/stylegan2_folder.py), with style mixing and path length. The images seen come from
the file name (network-snapshot-<kimg>.pkl), as the official trainer names snapshots, or
--kimg.

R3GAN's training snapshots (brownvc/R3GAN: G, D, G_ema, cur_nimg, training_set_kwargs and the
Adam states G_opt_state and D_opt_state) import too: `jaxgan.models.r3gan_official` maps the
networks; the images seen are cur_nimg; Adam's moments and step count come from the optimizer
states where the snapshot has them (else fresh); the batch, schedules and augmentation from
the r3gan recipe of the network's resolution (configs/r3gan_folder.py at 64 and 256 px, else
configs/r3gan_cifar10.py).
"""

import functools
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import optax
from absl import flags

from jaxgan import ada, cli, files, network_pickle
from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan import workdir as workdir_lib
from jaxgan.checkpoint import Checkpointer, _shapes
from jaxgan.configs import common, r3gan_cifar10, r3gan_folder, stylegan2_cifar10, stylegan2_folder
from jaxgan.errors import ConfigError, JaxganError
from jaxgan.models import r3gan_official, stylegan2_official
from jaxgan.objectives import penalties
from jaxgan.state import GANState, init_state, initial_ada

SNAPSHOT_NAME = re.compile(r'network-snapshot-(\d+)\.pkl$')
# A config file beside config.json, for `jaxgan.main --config=W/config.py`.
CONFIG_PY = '''"""This run folder's config.json, for python -m jaxgan.main --config=<this file>."""

import os

from jaxgan import import_network


def get_config():
  return import_network.run_config(os.path.dirname(os.path.abspath(__file__)))
'''


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config.json of `workdir` with every key typed as a recipe's is (config.json's
  values alone would fix e.g. train.augment_p to a string), so that --config.KEY=VALUE
  overrides work as on a recipe."""
  saved = workdir_lib.read_run(workdir)[0]
  config = config_lib.defaults(saved.model.name, saved.data.name)
  for key, value in config_lib.flatten(saved).items():
    *sections, leaf = key.split('.')
    node = config
    for section in sections:
      node = node[section]
    if isinstance(node.get(leaf), tuple) and isinstance(value, list):
      value = tuple(value)
    node[leaf] = value
  return config


def _config(nets: dict, report: list[str]) -> tuple[ml_collections.ConfigDict, tuple, float]:
  """The run's config and image shape: the networks' structure, the dataset's settings and
  ADA's from the pickle; the rest from the official cifar spec (configs/stylegan2_cifar10)."""
  model = stylegan2_official.model_config(nets['G'], nets['D'])
  image_shape = model.pop('image_shape')
  num_classes = model.pop('data.num_classes')
  cond = ',cond' if num_classes else ''
  if model['model.d_architecture'] == 'orig' or image_shape[0] < 32:
    config = stylegan2_cifar10.get_config(cond)
    report.append(
      'not in the pickle, as the official cifar spec: batch, learning rates, R1 gamma, EMA'
    )
  else:
    config = stylegan2_folder.get_config(f'{image_shape[0]}{cond}')
    report.append(
      f"not in the pickle, as train.py's auto spec at {image_shape[0]} px: batch, learning "
      'rates, R1 gamma, EMA, style mixing 0.9, path length 2'
    )
  for key, value in model.items():
    config.model[key.split('.')[1]] = value
  if config.model.d_architecture == 'resnet':  # the official loss's defaults
    config.model.style_mixing, config.model.pl_weight = 0.9, 2.0
    config.train.penalties = 'path_length'
  config.data = _data(nets.get('training_set_kwargs') or {}, image_shape, num_classes, report)
  if config.data.name != 'cifar10':
    config.eval_every, config.eval_features = 0, ''
    if image_shape == (32, 32, 3):
      config.eval_features = 'cifar10_classifier'
  p = _augment(nets.get('augment_pipe'), config, report)
  return config, image_shape, p


def _data(kwargs: dict, image_shape, num_classes: int, report: list[str]):
  resolution, channels = image_shape[0], image_shape[2]
  if kwargs.get('resolution', resolution) != resolution:
    raise ConfigError(
      f'training_set_kwargs.resolution={kwargs["resolution"]}, but G makes {resolution} px'
    )
  path = str(kwargs.get('path') or '')
  name = os.path.basename(path.rstrip('/'))
  if name.startswith('cifar10') and image_shape == (32, 32, 3):
    data = common.cifar10_data()  # dataset_tool's cifar10.zip is CIFAR-10's training split
    report.append(f'data: CIFAR-10 (the pickle trained on {path})')
  else:
    data = common.folder_data(resolution)
    data.dir, data.channels = path, channels
    zipped = name.lower().endswith('.zip')
    data.labels = ('dataset_json' if zipped else 'folders') if num_classes else 'none'
    where = 'its dataset.json' if zipped else 'its sub-folders'
    report.append(
      f'data: the image {"zip" if zipped else "folder"} {path or "(none given)"} at '
      f'{resolution} px'
      + (f', {num_classes} classes from {where}' if num_classes else '')
      + ': set --config.data.dir to where your copy is'
    )
  data.num_classes = num_classes
  data.mirror = bool(kwargs.get('xflip', False))
  return data


def _augment(pipe, config, report: list[str]) -> float:
  """ADA's ops and p from augment_pipe; no pipe: no augmentation."""
  if pipe is None:
    config.train.augment, config.train.augment_p = '', 1.0
    report.append('augmentation: none (the pickle has no augment_pipe)')
    return 0.0
  ops = {k for k, v in pipe.init_kwargs.items() if v and k in ada.OPS}
  others = sorted(k for k, v in pipe.init_kwargs.items() if v and k not in ada.OPS)
  pipes = [name for name, members in ada.PIPES.items() if set(members) == ops]
  config.train.augment = pipes[0] if pipes else 'bgc'
  p = float(pipe.buffers['p']) if pipe.buffers.get('p') is not None else 0.0
  note = '' if pipes and not others else f" (the pickle's ops: {', '.join(sorted(ops) + others)})"
  report.append(f'augmentation: {config.train.augment}{note}, adaptive, from p={p:.4g}')
  return p


def import_network(pkl: str, workdir: str, kimg: int | None = None) -> list[str]:
  """Writes the run folder `workdir` from the network pickle `pkl`; returns what it did, line
  by line, for the user."""
  if not os.path.isfile(pkl):
    raise JaxganError(f'--pkl: no file {pkl!r}')
  if os.path.exists(os.path.join(workdir, 'checkpoints')):
    raise JaxganError(f'{workdir!r} already holds checkpoints: import into a new workdir')
  with open(pkl, 'rb') as f:
    nets = network_pickle.read(f.read(), pkl)
  if r3gan_official.is_r3gan(nets):
    return _import_r3gan(nets, pkl, workdir)
  missing = [k for k in ('G', 'D', 'G_ema') if not isinstance(nets.get(k), network_pickle.Module)]
  if missing:
    raise JaxganError(f'{pkl} has no {", ".join(missing)}: not a StyleGAN2-ADA network pickle')
  report = [f'read {pkl}: G, D, G_ema' + (', augment_pipe' if nets.get('augment_pipe') else '')]
  config, image_shape, p = _config(nets, report)
  config_lib.validate(config)
  if kimg is None:
    match = SNAPSHOT_NAME.search(os.path.basename(pkl))
    kimg = int(match.group(1)) if match else 0
  step = kimg * 1000 // (config.batch_size * config.train.d_steps)
  config.num_steps = max(config.num_steps, step)

  g_params, g_buffers = stylegan2_official.generator_variables(nets['G'])
  g_ema_params, g_ema_buffers = stylegan2_official.generator_variables(nets['G_ema'])
  if _differ(g_buffers, g_ema_buffers):
    report.append("G's and G_ema's buffers differ: jaxgan keeps one set, G_ema's")
  d_params = stylegan2_official.discriminator_params(nets['D'])
  gan = gan_lib.from_config(config, image_shape)
  state_key, like = _new_state_shapes(gan, config, image_shape)
  g_params = _fitted(g_params, like.g_params, 'G')
  d_params = _fitted(d_params, like.d_params, 'D')
  state = GANState(
    step=jnp.asarray(step, jnp.int32),
    rng=jax.random.split(state_key, 3)[0],  # as init_state's
    g_params=g_params,
    g_vars=_fitted({'buffers': g_ema_buffers}, like.g_vars, "G_ema's buffers"),
    g_opt_state=jax.jit(gan.g_optimizer.init)(g_params),
    d_params=d_params,
    d_vars=_fitted({}, like.d_vars, "D's buffers"),
    d_opt_state=jax.jit(gan.d_optimizer.init)(d_params),
    g_ema_params=_fitted(g_ema_params, like.g_ema_params, 'G_ema'),
    ada={**initial_ada(), 'p': jnp.asarray(p, jnp.float32)},
    penalty_vars={q.name: q.init() for q in penalties.active(gan) if q.init},
  )
  written = _write(workdir, config, image_shape, state, like)
  report += [
    _networks('StyleGAN2-ADA', config, image_shape),
    "optimizer states: not in the pickle: G's and D's start fresh (Adam's moments at zero)",
    f'images seen: {kimg} kimg -> step {step} at batch {config.batch_size}',
    *written,
  ]
  return report


def _r3gan_config(nets: dict, report: list[str]):
  model = r3gan_official.model_config(nets['G'])
  image_shape, num_classes = model.pop('image_shape'), model.pop('data.num_classes')
  cond = ',cond' if num_classes else ''
  if image_shape[0] in r3gan_folder.PRESETS:
    config = r3gan_folder.get_config(f'{image_shape[0]}{cond}')
    recipe = f'r3gan_folder:{image_shape[0]}'
  else:
    config, recipe = r3gan_cifar10.get_config(cond[1:]), 'r3gan_cifar10'
  report.append(
    f'not in the snapshot, as the {recipe} recipe: batch, schedules (learning rates, b2, gamma, '
    'EMA, augmentation probability), augmentation'
  )
  for key, value in model.items():
    config.model[key.split('.')[1]] = value
  config.model.d_embed_dim = r3gan_official.d_embed_dim(nets['D'])
  config.model.conditional = bool(num_classes)
  config.data = _data(nets.get('training_set_kwargs') or {}, image_shape, num_classes, report)
  if config.data.name != 'cifar10':
    config.eval_every, config.eval_features = 0, ''
    if image_shape == (32, 32, 3):
      config.eval_features = 'cifar10_classifier'
  return config, image_shape


def _adam(gan_optimizer, params, net, opt_state, to_params, what: str, report: list[str]):
  """The optimizer state of `params`: the snapshot's Adam moments and step count where it has
  them (opt_state), else fresh."""
  state = jax.jit(gan_optimizer.init)(params)
  if opt_state is None:
    report.append(f"optimizer state of {what}: not in the snapshot: fresh (Adam's moments at 0)")
    return state
  mu, nu, count = r3gan_official.optimizer_moments(net, opt_state, to_params)
  mu, nu = _fitted(mu, params, f"{what}'s exp_avg"), _fitted(nu, params, f"{what}'s exp_avg_sq")
  count = jnp.asarray(count, jnp.int32)

  def swap(node):  # optax's states are named tuples and tuples
    if isinstance(node, optax.ScaleByAdamState):
      return node._replace(count=count, mu=mu, nu=nu)
    if hasattr(node, '_fields'):
      fields = {f: swap(getattr(node, f)) for f in node._fields}
      if 'inner_state' in fields:  # inject_hyperparams' count of updates
        fields['count'] = count
      return node._replace(**fields)
    return tuple(map(swap, node)) if isinstance(node, tuple) else node

  is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
  if not any(map(is_adam, jax.tree.leaves(state, is_leaf=is_adam))):
    raise JaxganError(f"{what}'s optimizer is not Adam: cannot take the snapshot's state")
  report.append(f"optimizer state of {what}: the snapshot's Adam moments, step {int(count)}")
  return swap(state)


def _import_r3gan(nets: dict, pkl: str, workdir: str) -> list[str]:
  if not isinstance(nets.get('G_ema'), network_pickle.Module):
    raise JaxganError(f'{pkl} has no G_ema: not an R3GAN snapshot')
  keys = [k for k in ('G', 'D', 'G_ema', 'cur_nimg', 'G_opt_state', 'D_opt_state') if k in nets]
  report = [f'read {pkl}: ' + ', '.join(keys)]
  config, image_shape = _r3gan_config(nets, report)
  config_lib.validate(config)
  nimg = int(nets.get('cur_nimg') or 0)
  step = nimg // (config.batch_size * config.train.d_steps)
  config.num_steps = max(config.num_steps, step)
  to_g, to_d = r3gan_official.generator_params, r3gan_official.discriminator_params
  gan = gan_lib.from_config(config, image_shape)
  state_key, like = _new_state_shapes(gan, config, image_shape)
  g_params = _fitted(to_g(nets['G']), like.g_params, 'G')
  d_params = _fitted(to_d(nets['D']), like.d_params, 'D')
  state = GANState(
    step=jnp.asarray(step, jnp.int32),
    rng=jax.random.split(state_key, 3)[0],  # as init_state's
    g_params=g_params,
    g_vars=_fitted({}, like.g_vars, "G's buffers"),
    g_opt_state=_adam(
      gan.g_optimizer, g_params, nets['G'], nets.get('G_opt_state'), to_g, 'G', report
    ),
    d_params=d_params,
    d_vars=_fitted({}, like.d_vars, "D's buffers"),
    d_opt_state=_adam(
      gan.d_optimizer, d_params, nets['D'], nets.get('D_opt_state'), to_d, 'D', report
    ),
    g_ema_params=_fitted(to_g(nets['G_ema']), like.g_ema_params, 'G_ema'),
    ada=initial_ada(),
    penalty_vars={q.name: q.init() for q in penalties.active(gan) if q.init},
  )
  written = _write(workdir, config, image_shape, state, like)
  report += [
    _networks('R3GAN', config, image_shape),
    f'images seen: cur_nimg {nimg} -> step {step} at batch {config.batch_size}',
    *written,
  ]
  return report


def _new_state_shapes(gan, config, image_shape) -> tuple[jax.Array, GANState]:
  """(the trainer's state key, the shapes of the state a new run starts from): shapes only,
  since initialising would compile the networks; the pickle's weights fill them."""
  state_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)[0]  # as the trainer's
  like = jax.eval_shape(functools.partial(init_state, gan, image_shape=image_shape), state_key)
  return state_key, like


def _networks(family: str, config, image_shape) -> str:
  shape = 'x'.join(map(str, image_shape))
  classes = f', {config.data.num_classes} classes' if config.model.conditional else ''
  return f'networks: {family} at {shape}{classes}'


def _write(workdir: str, config, image_shape, state: GANState, like: GANState) -> list[str]:
  """Writes the run folder of `state` (checked against `like`); the lines that say so."""
  _fitted(state, like, 'the state')
  workdir_lib.prepare(workdir)
  workdir_lib.write_run(workdir, config, image_shape)
  files.write_bytes(os.path.join(workdir, 'config.py'), CONFIG_PY.encode())
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  ckpt.save(state, force=True)
  ckpt.wait()
  ckpt.close()
  return [
    f'wrote {workdir}: config.json, run.json, config.py, checkpoints/{int(state.step)}',
    f'fine-tune with: python -m jaxgan.main --config={os.path.join(workdir, "config.py")} '
    f'--workdir={workdir}',
  ]


def _differ(a, b) -> bool:
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return any(x.shape != y.shape or (x != y).any() for x, y in pairs)


def _fitted(tree, like, what: str):
  """`tree` as arrays of `like`'s dtypes, after checking it has `like`'s structure and shapes."""
  got, want = _shapes(tree), _shapes(like)
  if got.keys() != want.keys():
    extra, absent = sorted(got.keys() - want.keys()), sorted(want.keys() - got.keys())
    detail = f'the pickle has {extra[0]}' if extra else f'the pickle lacks {absent[0]}'
    raise JaxganError(f"{what} does not fit jaxgan's network built from its arguments: {detail}")
  for key, (shape, _) in want.items():
    if got[key][0] != shape:
      raise JaxganError(f'{what}: {key} is {got[key][0]} in the pickle, {shape} in jaxgan')
  return jax.tree.map(lambda x, y: jnp.asarray(x, y.dtype), tree, like)


def _define_flags() -> None:
  flags.DEFINE_string('pkl', None, 'A stylegan2-ada-pytorch network pickle or an R3GAN snapshot.')
  flags.DEFINE_string('workdir', None, 'The run folder to write (new, or without checkpoints).')
  flags.DEFINE_integer(
    'kimg', None, 'Thousands of images the networks trained on; default: from the file name.'
  )
  flags.mark_flags_as_required(['pkl', 'workdir'])


def main():
  FLAGS = flags.FLAGS
  lines = cli.guarded(lambda: import_network(FLAGS.pkl, FLAGS.workdir, FLAGS.kimg), FLAGS.verbose)
  print('\n'.join(lines))


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
