"""Every config key is defined once (its default and its check), and every component is chosen
by name from one kind of registry, whose unknown names give one error line naming the known."""

import dataclasses
import json
import subprocess
import sys

import ml_collections
import pytest

from jaxgan import checks, data, models, objectives
from jaxgan import config as config_lib
from jaxgan import gan as gan_lib
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib
from jaxgan.evaluation import registry as metrics_registry
from jaxgan.objectives import penalties
from jaxgan.registry import Registry, UnknownName
from tests.conftest import REPO


def _definitions(model: str, source: str) -> dict[str, list[str]]:
  """{dotted key: [where it is defined, ...]} over every place a key can be defined."""
  family, src = models.get(model), data.get(source)
  places = {
    'config.LOOP': config_lib.LOOP,
    'gan.OPTIM_SCHEMA': {f'optim.{k}': v for k, v in gan_lib.OPTIM_SCHEMA.items()},
    'gan.GAN': {k: v for k, (_, v) in gan_lib.hyperparameters().items()},
    'models.COMMON_SCHEMA': {f'model.{k}': v for k, v in models.COMMON_SCHEMA.items()},
    f'{model}.SCHEMA': {f'model.{k}': v for k, v in family.SCHEMA.items()},
    'data.COMMON_SCHEMA': {f'data.{k}': v for k, v in data.COMMON_SCHEMA.items()},
    f'{source}.SCHEMA': {f'data.{k}': v for k, v in src.SCHEMA.items()},
  }
  out: dict[str, list[str]] = {}
  for place, keys in places.items():
    for key in keys:
      out.setdefault(key, []).append(place)
  return out


@pytest.mark.parametrize('model', ['dcgan', 'resnet'])
@pytest.mark.parametrize('source', ['mnist', 'stacked_mnist', 'folder', 'cifar10'])
def test_each_key_has_exactly_one_definition(model, source):
  definitions = _definitions(model, source)
  twice = {k: v for k, v in definitions.items() if len(v) > 1}
  assert not twice
  schema = config_lib._schema(model, source)
  assert set(schema) == set(definitions)
  # The default config holds exactly the keys with a default, at that default.
  flat = config_lib.flatten(config_lib.defaults(model, source))
  with_default = {k: e.default for k, e in schema.items() if checks.key_of(e)}
  assert flat.keys() - {'model.name', 'data.name'} == with_default.keys()
  for key, default in with_default.items():
    assert flat[key] == default, key
    assert checks.check_of(schema[key])(default) is None, f'{key}: its default fails its check'


def test_the_gan_fields_a_config_sets_default_to_their_definition():
  """GAN(...) built in code and GAN from a config that leaves the keys out agree."""
  fields = {f.name: f for f in dataclasses.fields(gan_lib.GAN)}
  for key, (name, entry) in gan_lib.hyperparameters().items():
    assert fields[name].default == entry.default, key
  config = config_lib.defaults('dcgan', 'mnist')
  config.num_steps = 1
  gan = gan_lib.from_config(config, (28, 28, 1))
  for key, (name, entry) in gan_lib.hyperparameters().items():
    assert getattr(gan, name) == entry.default, key


def test_complete_adds_only_missing_keys_and_validate_uses_it(test_config):
  if 'penalties' in test_config.train:  # as in a config written before the key existed
    del test_config.train['penalties']
  test_config.train.gp_weight = 3.0
  config_lib.validate(test_config)
  assert test_config.train.penalties == '' and test_config.train.gp_weight == 3.0


def test_an_older_config_json_is_migrated(test_config):
  """A config.json written when the loop's keys sat in `train` reads as today's config."""
  old = json.loads(test_config.to_json())
  for key in ('steps_per_call', 'on_nan', 'rollback_lr_factor', 'max_rollbacks'):
    del old[key]
  old['train'].update(steps_per_call=3, on_nan='rollback', rollback_lr_factor=0.25, max_rollbacks=7)
  del old['train']['penalties']  # and a key that did not exist yet
  config = config_lib.migrate(ml_collections.ConfigDict(old))
  config_lib.validate(config)
  assert (config.steps_per_call, config.on_nan) == (3, 'rollback')
  assert (config.rollback_lr_factor, config.max_rollbacks) == (0.25, 7)
  assert not set(config_lib.RENAMED.values()) & set(config.train)
  assert config.train.penalties == ''


def test_a_config_must_name_what_has_no_default():
  config = config_lib.defaults('dcgan', 'mnist')
  with pytest.raises(ConfigError, match="config key 'num_steps' is missing: it has no default"):
    config_lib.validate(config)


# --- Registries --------------------------------------------------------------------------------


def test_a_registry_lists_the_known_names_on_an_unknown_one():
  reg = Registry('widget', 'config.widget', {'a': 1})
  assert reg.register('b', 2) == 2 and reg.get('b') == 2 and reg.names() == ('a', 'b')
  with pytest.raises(UnknownName) as e:
    reg.get('c')
  assert str(e.value) == "unknown widget 'c' (config.widget); known: a, b"
  assert isinstance(e.value, ConfigError)
  copy = reg.copy()
  copy.register('c', 3)
  assert 'c' in copy and 'c' not in reg


@pytest.mark.parametrize(
  'lookup, message',
  [
    (models.get, r"unknown model family 'x' \(model.name\); known: dcgan, resnet"),
    (objectives.get, r"unknown loss 'x' \(train.loss\); known: non_saturating, .*hinge"),
    (penalties.get, r"unknown penalty 'x' \(train.penalties\)"),
    (data.get, r"unknown data source 'x' \(data.name, or tfds:NAME .*\); known: mnist, "),
    (metrics_registry.get, r"unknown metric 'x'; known: fid, manifold"),
    (features_lib.get, r"unknown feature network 'x' \(eval_features, --features\); known: mnist_"),
  ],
)
def test_every_kind_of_component_has_the_same_unknown_name_error(lookup, message):
  with pytest.raises(UnknownName, match=message):
    lookup('x')


def test_tensorflow_datasets_are_named_explicitly():
  from jaxgan.data import tfds_source

  assert data.get('tfds:fashion_mnist') is tfds_source
  with pytest.raises(UnknownName):
    data.get('fashion_mnist')


@pytest.mark.parametrize(
  'override, message',
  [
    ('--config.model.name=dcgan2', "unknown model family 'dcgan2' (model.name); known: dcgan"),
    ('--config.train.penalties=r2', "config.train.penalties names unknown penalties ['r2']"),
  ],
)
def test_unknown_names_on_the_command_line_are_one_error_line(tmp_path, override, message):
  """Two kinds through the command line (the others raise the same UnknownName, above)."""
  workdir = tmp_path / 'w'
  cmd = [sys.executable, '-m', 'jaxgan.main', '--config=configs/test.py', f'--workdir={workdir}']
  r = subprocess.run(cmd + [override], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2, r.stderr
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('jaxgan: error:')]
  assert len(errors) == 1 and message in errors[0], r.stderr
  assert 'Traceback' not in r.stderr


# --- Short signatures --------------------------------------------------------------------------

STEP_AND_TRAINER = [REPO / 'jaxgan' / 'steps.py', *sorted((REPO / 'jaxgan' / 'train').glob('*.py'))]


@pytest.mark.parametrize('path', STEP_AND_TRAINER, ids=lambda p: p.name)
def test_no_step_or_trainer_function_takes_more_than_five_parameters(path):
  """Counted: every named parameter (positional and keyword-only, *args included), less self;
  not a **kwargs that is forwarded to flax (steps.apply's labels=, rngs=)."""
  import ast

  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
      a = node.args
      names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
      names += [a.vararg.arg] if a.vararg else []
      names = [n for n in names if n not in ('self', 'cls')]
      assert len(names) <= 5, f'{path.name}: {node.name}({", ".join(names)})'
