"""docs/extending.md as a user follows it: each new file written out as shown, each "try it"
block run as printed; and the trainer stays free of any one model's or dataset's code."""

import ast
import contextlib
import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from jaxgan import data, evaluation, models, objectives, train
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
    for module in (models, objectives, data, evaluation.registry):
      mp.setattr(module, '_REGISTRY', dict(module._REGISTRY))
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


def test_the_page_has_four_files_and_four_runs():
  files, runs = _examples()
  assert sorted(files) == ['blobs.py', 'mean_distance.py', 'my_mlp.py', 'pearson_lsgan.py']
  assert len(runs) == 4


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


def _registered() -> dict[str, bool]:
  return {
    'mlp': 'mlp' in models.names(),
    'pearson_lsgan': 'pearson_lsgan' in objectives.names(),
    'blobs': 'blobs' in data._REGISTRY,
    'feature_mean_l2': 'feature_mean_l2' in evaluation.registry.names(),
  }


def test_registrations_end_with_each_example(tmp_path):
  assert not any(_registered().values())
  with _installed(tmp_path):
    for name in ('my_mlp', 'pearson_lsgan', 'blobs', 'mean_distance'):
      importlib.import_module(name)  # what each example's try-it block imports first
    assert all(_registered().values())
  assert not any(_registered().values())
  assert not {'my_mlp', 'pearson_lsgan', 'blobs', 'mean_distance'} & set(sys.modules)


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
