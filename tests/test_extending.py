"""docs/extending.md as a user follows it: each new file written out as shown, each "try it"
block run as printed; and the trainer stays free of any one model's or dataset's code."""

import ast
import re
import sys

import pytest

from jaxgan import data, evaluation, models, objectives
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


@pytest.fixture
def user_files(tmp_path, monkeypatch):
  # What the examples register is gone after each test (monkeypatch restores the registries).
  for module in (models, objectives, data, evaluation.registry):
    monkeypatch.setattr(module, '_REGISTRY', dict(module._REGISTRY))
  files, runs = _examples()
  for name, code in files.items():
    (tmp_path / name).write_text(code)
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.chdir(REPO)
  yield runs
  for name in files:
    sys.modules.pop(name[:-3], None)


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


def test_a_new_loss_trains(user_files):
  _run(user_files[1])
  assert 'pearson_lsgan' in objectives.names()


def test_a_new_dataset_trains(user_files):
  scope = _run(user_files[2])
  assert data.get('blobs').image_shape(scope['config'].data) == (16, 16, 1)


def test_a_new_metric_is_reported(user_files):
  scope = _run(user_files[3])
  assert scope['same']['feature_mean_l2'] == 0.0
  assert scope['different']['feature_mean_l2'] > 1.0
  assert 'feature_mean_l2' in evaluation.registry.names()


def test_registrations_end_with_each_example():
  assert 'feature_mean_l2' not in evaluation.registry.names()
  assert 'mlp' not in models.names() and 'pearson_lsgan' not in objectives.names()


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
