"""docs/extending.md as a user follows it: each new file written out as shown, each "try it"
block run as printed; and the trainer stays free of any one model's or dataset's code."""

import ast
import contextlib
import dataclasses
import importlib
import json
import math
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from jaxgan import data, evaluation, models, objectives, train
from jaxgan.objectives import penalties
from tests.conftest import REPO


def _examples() -> tuple[dict[str, str], list[str]]:
  """({file name: its code}, [try-it blocks]) in the order of the page."""
  text = (REPO / 'docs' / 'extending.md').read_text()
  files, runs = {}, []
  for before, code in re.findall(r'(.*?)```python\n(.*?)```', text, re.S):
    paragraph = before.strip().split('\n\n')[-1]  # a file's block follows "`name.py` ...:"
    name = re.match(r'`(\w+\.py)`', paragraph)
    if name:
      files[name.group(1)] = code
    else:
      runs.append(code)
  return files, runs


@contextlib.contextmanager
def _installed(tmp_path: Path):
  """The page's files written into `tmp_path` and importable; yields the try-it blocks.

  What the examples register is gone afterwards (the registries are restored), and so are
  their modules, so that no other test sees them."""
  files, runs = _examples()
  with pytest.MonkeyPatch.context() as mp:
    for module in (models, objectives, penalties, data, evaluation.registry):
      mp.setattr(module, '_REGISTRY', module._REGISTRY.copy())
    for name, code in files.items():
      (tmp_path / name).write_text(code)
    mp.syspath_prepend(str(tmp_path))
    mp.chdir(REPO)
    try:
      yield runs
    finally:
      for name in files:
        sys.modules.pop(name[:-3], None)


@pytest.fixture
def user_files(tmp_path):
  with _installed(tmp_path) as runs:
    yield runs


EXAMPLES = [
  'my_mlp',
  'pearson_lsgan',
  'blobs',
  'mean_distance',
  'output_energy',
  'ragan',
  'my_schedules',
]


def test_the_page_has_seven_files_and_seven_runs():
  files, runs = _examples()
  assert list(files) == [f'{name}.py' for name in EXAMPLES]
  assert len(runs) == 7


def _run(code: str) -> dict:
  scope = {'__name__': '__main__'}
  exec(compile(code, 'docs/extending.md', 'exec'), scope)
  return scope


def test_a_new_model_trains(user_files, capsys):
  scope = _run(user_files[0])
  assert 'mlp' in models.names()
  assert 'mlp trained to step 6' in capsys.readouterr().out
  assert int(scope['state'].step) == 6


def test_a_new_loss_trains(user_files, monkeypatch):
  """The run trains with the new loss: made recognisable by constants added to its two
  losses (which change no gradient, so the run is the page's), its values are what
  metrics.jsonl logs."""
  import pearson_lsgan

  offset_d, offset_g = 1000.0, 2000.0
  marked = objectives.Objective(
    'pearson_lsgan',
    lambda r, f, s=0.0: pearson_lsgan.d_loss(r, f, s) + offset_d,
    lambda f: pearson_lsgan.g_loss(f) + offset_g,
  )
  objectives.register(marked)  # the block's own import finds the module imported already
  workdirs = []
  trainer = train.train_and_evaluate

  def recorded(config, workdir):
    workdirs.append(workdir)
    return trainer(config, workdir)

  monkeypatch.setattr(train, 'train_and_evaluate', recorded)
  _run(user_files[1])
  assert objectives.get('pearson_lsgan') is marked
  (workdir,) = workdirs
  rows = [json.loads(ln) for ln in (Path(workdir) / 'metrics.jsonl').read_text().splitlines()]
  shutil.rmtree(workdir)
  assert [r['step'] for r in rows] == [2, 4, 6]
  for r in rows:  # both losses are squares: at least the offsets, and not far above early on
    assert offset_d <= r['d_loss'] < offset_d + 10 and offset_g <= r['g_loss'] < offset_g + 10


def test_a_new_dataset_trains(user_files):
  scope = _run(user_files[2])
  assert data.get('blobs').image_shape(scope['config'].data) == (16, 16, 1)


def test_a_new_metric_is_reported(user_files):
  scope = _run(user_files[3])
  assert scope['same']['feature_mean_l2'] == 0.0
  assert scope['different']['feature_mean_l2'] > 1.0
  assert 'feature_mean_l2' in evaluation.registry.names()


def test_a_g_penalty_runs_as_a_phase_of_its_own_every_4th_g_update(user_files, capsys):
  _run(user_files[4])
  printed = capsys.readouterr().out.splitlines()[-1]
  energy = ast.literal_eval(printed.split(': ', 1)[1])
  # Log steps 2, 4, 6 average G updates (0, 1), (2, 3), (4, 5): 0 and 4 ran it.
  assert energy[0] > 0 and energy[1] == 0 and energy[2] > 0


def test_a_lazy_g_penalty_is_an_sgd_update_of_k_times_its_weighted_gradient(user_files):
  """One step of a linear G with SGD(1): the G phase moves G's params by 0.1 * 4 * the
  gradient of mean(G(z)^2) at the params G's main update left, on G update 0 only."""
  import jax
  import jax.numpy as jnp
  import optax
  import output_energy

  from jaxgan import steps
  from jaxgan.batch import Batch, FakeBatch
  from jaxgan.gan import GAN
  from jaxgan.state import init_state
  from tests.test_family import DenseG, LinearD

  plain = GAN(DenseG(), LinearD(), optax.sgd(1.0), optax.sgd(0.1), latent_dim=3)
  lazy = dataclasses.replace(plain, penalties='output_energy')
  state = init_state(plain, jax.random.PRNGKey(0), (4,))
  real = Batch(jax.random.uniform(jax.random.PRNGKey(1), (1, 5, 4), minval=-1))
  key = jax.random.split(jax.random.fold_in(state.rng, state.step), 2)[0]
  z = plain.sample_inputs(key, 5).z  # the inputs G's first update reuses
  for t, due in ((0, True), (1, False)):
    s = state.replace(step=jnp.asarray(t, jnp.int32))
    after_main, _ = steps.train_step(plain, s, real)
    new, m = steps.train_step(lazy, s, real)

    def energy(p):
      images = steps.apply(lazy.generator, p, {}, z, True)[0]  # noqa: B023
      return output_energy.output_energy(types.SimpleNamespace(fake=FakeBatch(images, None)))

    want = after_main.g_params
    if due:
      grad = jax.grad(energy)(after_main.g_params)
      want = jax.tree.map(lambda p, g: p - 0.1 * 4 * g, after_main.g_params, grad)
      np.testing.assert_allclose(m['output_energy'], energy(after_main.g_params), rtol=1e-5)
    else:
      assert float(m['output_energy']) == 0.0
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new.g_params, want
    )


def test_a_relativistic_loss_gives_g_the_real_logits(user_files, capsys):
  """G's loss in G's step is RaGAN's of D's logits on the fakes and on the real batch."""
  import jax
  import optax
  import ragan

  from jaxgan import steps
  from jaxgan.batch import Batch, FakeInputs
  from jaxgan.gan import GAN
  from jaxgan.state import init_state
  from tests.test_family import DenseG, LinearD

  _run(user_files[5])
  assert 'ragan trained to step 6' in capsys.readouterr().out
  gan = GAN(DenseG(), LinearD(), optax.sgd(0.1), optax.sgd(0.1), latent_dim=3, loss='ragan')
  state = init_state(gan, jax.random.PRNGKey(0), (4,))
  real = Batch(jax.random.uniform(jax.random.PRNGKey(1), (6, 4), minval=-1))
  z = jax.random.normal(jax.random.PRNGKey(2), (6, 3))
  _, m = steps.g_step(gan, state, FakeInputs(z), real)

  def d(x):
    return steps.apply(gan.discriminator, state.d_params, state.d_vars, x, True)[0]

  fake = steps.apply(gan.generator, state.g_params, state.g_vars, z, True)[0]
  np.testing.assert_allclose(m['g_loss'], ragan.g_loss(d(fake), d(real.images)), rtol=1e-6)
  assert abs(float(m['g_loss']) - float(ragan.g_loss(d(fake), 0 * d(real.images)))) > 1e-4
  with pytest.raises(ValueError, match="loss 'ragan' compares fakes with reals: pass batch="):
    steps.g_step(gan, state, FakeInputs(z))


def test_a_hyperparameter_follows_a_cosine_schedule_over_images_seen(user_files, capsys):
  """The logged values are the cosines at the images seen before each logged iteration."""
  _run(user_files[6])
  rows = [line.split() for line in capsys.readouterr().out.splitlines()[-6:]]
  assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 6]

  def cosine(start, end, images, seen):
    return start + (end - start) * (1 - math.cos(math.pi * min(seen / images, 1))) / 2

  for step, d_lr, r1_weight in rows:
    seen = (int(step) - 1) * 8
    assert float(d_lr) == pytest.approx(cosine(2e-4, 5e-5, 48, seen), rel=1e-5)
    assert float(r1_weight) == pytest.approx(cosine(0.05, 0.005, 24, seen), rel=1e-5)


def _registered() -> dict[str, bool]:
  return {
    'mlp': 'mlp' in models.names(),
    'pearson_lsgan': 'pearson_lsgan' in objectives.names(),
    'blobs': 'blobs' in data._REGISTRY,
    'feature_mean_l2': 'feature_mean_l2' in evaluation.registry.names(),
    'output_energy': 'output_energy' in penalties.names(),
    'ragan': 'ragan' in objectives.names(),
  }


def test_registrations_end_with_each_example(tmp_path):
  assert not any(_registered().values())
  with _installed(tmp_path):
    for name in EXAMPLES:
      importlib.import_module(name)  # what each example's try-it block imports first
    assert all(_registered().values())
  assert not any(_registered().values())
  assert not set(EXAMPLES) & set(sys.modules)


TRAINER = sorted((REPO / 'jaxgan' / 'train').glob('*.py'))


@pytest.mark.parametrize('path', TRAINER, ids=lambda p: p.name)
def test_the_trainer_names_no_model_or_dataset(path):
  text = path.read_text().lower()
  for word in ('mnist', 'dcgan', 'g_features', 'd_features', 'cifar'):
    assert word not in text, f'{path.name} mentions {word}'


@pytest.mark.parametrize('path', TRAINER, ids=lambda p: p.name)
def test_the_trainer_imports_no_model_module(path):
  """Models come through the registry (jaxgan.models); the XLA:CPU compiler options through
  jaxgan.xla_cpu, not a family's layers."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module:
      names = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    else:
      continue
    assert not any(n.startswith('jaxgan.models.') for n in names), f'{path.name}: {names}'


@pytest.mark.parametrize('path', TRAINER, ids=lambda p: p.name)
def test_the_trainer_has_short_functions(path):
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
      length = node.end_lineno - node.lineno + 1
      assert length <= 60, f'{path.name}: {node.name} is {length} lines'
