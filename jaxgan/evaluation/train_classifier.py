"""Trains a feature classifier (MNIST or CIFAR-10) and writes the weights that jaxgan ships.

  python -m jaxgan.evaluation.train_classifier --data_dir=../shared/data/mnist
  python -m jaxgan.evaluation.train_classifier --dataset=cifar10 --data_dir=/tmp/data/cifar10-jpg

For CIFAR-10, --data_dir is the JPEG folder that ../shared/data/cifar10/cifar10-jpg.tar.gz
unpacks to (train/ and test/, one sub-folder per class). Deterministic for a given --seed on a
given machine (initialisation, shuffling and augmentation come from it). Writes `--out`
(msgpack) and, beside it, a .json file recording how it was made and its test accuracy.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags

from jaxgan import cli
from jaxgan.data import folder, mnist
from jaxgan.errors import DataError, JaxganError
from jaxgan.evaluation import cifar_classifier, classifier
from jaxgan.images import to_float

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The command's flags, defined only when run as a program (importing this module beside
  another CLI module defines no flag twice)."""
  flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'cifar10'], 'Which classifier to train.')
  flags.DEFINE_string(
    'data_dir', '', 'MNIST: the IDX files (empty: download). CIFAR-10: the JPEG folder (required).'
  )
  flags.DEFINE_integer('seed', 0, 'Seeds initialisation, shuffling and augmentation.')
  flags.DEFINE_integer(
    'epochs', None, 'Passes over the training images (default per dataset).', lower_bound=1
  )
  flags.DEFINE_integer(
    'batch_size', None, 'Training batch size (default per dataset).', lower_bound=1
  )
  flags.DEFINE_float('learning_rate', None, 'Peak learning rate (default per dataset).')
  flags.DEFINE_integer(
    'max_shift', 2, 'Augmentation: random translations of up to this many pixels.'
  )
  flags.DEFINE_string('out', '', 'Where to write the weights (msgpack); default: the shipped file.')


# MNIST: Adam, cosine decay. CIFAR-10: SGD with Nesterov momentum, one epoch of linear warm-up
# then linear decay to 0, label smoothing and weight decay, random flips and translations.
DEFAULTS = {
  'mnist': {'epochs': 3, 'batch_size': 128, 'learning_rate': 1e-3},
  'cifar10': {'epochs': 15, 'batch_size': 256, 'learning_rate': 0.2},
}
WEIGHT_DECAY = 5e-4
LABEL_SMOOTHING = 0.2
CIFAR10_CLASSES = (
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
)


def random_shift(key: jax.Array, padded: jax.Array, size: int) -> jax.Array:
  """Random size x size crops of a padded uint8 batch: translations of the centred digits."""
  offsets = jax.random.randint(key, (padded.shape[0], 2), 0, padded.shape[1] - size + 1)

  def crop(img, o):
    return jax.lax.dynamic_slice(img, (o[0], o[1], 0), (size, size, img.shape[-1]))

  return jax.vmap(crop)(padded, offsets)


def make_train_step(optimizer: optax.GradientTransformation):
  """(params, opt_state, padded uint8 images, labels, key) -> (params, opt_state, loss), jitted."""

  def loss_fn(params, images, labels):
    logits, _ = classifier.Classifier().apply({'params': params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  @jax.jit
  def train_step(params, opt_state, padded, labels, key):
    images = to_float(random_shift(key, padded, 28))
    loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return train_step


def accuracy(
  weights, images: np.ndarray, labels: np.ndarray, classify=classifier.classify
) -> float:
  """Fraction of `images` whose most probable class (by `classify`) is their label."""
  _, probs = classify(images, weights)
  return float(np.mean(probs.argmax(-1) == labels))


def fit(
  train_step,
  weights,
  opt_state,
  images: np.ndarray,
  labels: np.ndarray,
  epochs: int,
  batch_size: int,
  shuffle_key: jax.Array,
  step_key: jax.Array,
  test_accuracy=None,
  t0: float | None = None,
):
  """`epochs` passes of `train_step(weights, opt_state, images, labels, key)` over batches in a
  fresh order per epoch (from `shuffle_key`; each epoch's last partial batch is dropped), each
  step's key folded from `step_key`. Prints each epoch's mean loss, and `test_accuracy(weights)`
  when given, and the seconds since `t0` (default: now). Returns (weights, the last epoch's
  test accuracy or None)."""
  t0 = time.time() if t0 is None else t0
  steps_per_epoch = len(images) // batch_size
  acc = None
  for epoch in range(epochs):
    order = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), len(images)))
    losses = []
    for i in range(steps_per_epoch):
      idx = order[i * batch_size : (i + 1) * batch_size]
      key = jax.random.fold_in(step_key, epoch * steps_per_epoch + i)
      weights, opt_state, loss = train_step(weights, opt_state, images[idx], labels[idx], key)
      losses.append(loss)
    line = f'epoch {epoch + 1}/{epochs}: loss {float(jnp.mean(jnp.stack(losses))):.4f}'
    if test_accuracy is not None:
      acc = test_accuracy(weights)
      line += f', test accuracy {acc:.4f}'
    print(f'{line} ({time.time() - t0:.0f} s)', flush=True)
  return weights, acc


def train(
  data_dir: str, seed: int, epochs: int, batch_size: int, learning_rate: float, max_shift: int
):
  """Trains on MNIST train; returns (params, test accuracy, seconds)."""
  t0 = time.time()
  train_images, train_labels = mnist.load_mnist('train', data_dir=data_dir)
  test_images, test_labels = mnist.load_mnist('test', data_dir=data_dir)
  s = max_shift
  padded = np.pad(train_images, ((0, 0), (s, s), (s, s), (0, 0)))  # background is 0
  steps_per_epoch = len(padded) // batch_size  # the last partial batch of each epoch is dropped
  schedule = optax.cosine_decay_schedule(learning_rate, epochs * steps_per_epoch)
  optimizer = optax.adam(schedule)
  init_key, shuffle_key, shift_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  params = classifier.init_params(init_key)
  opt_state = optimizer.init(params)
  train_step = make_train_step(optimizer)
  params, _ = fit(
    train_step,
    params,
    opt_state,
    padded,
    train_labels,
    epochs,
    batch_size,
    shuffle_key,
    shift_key,
    t0=t0,
  )
  return params, accuracy(params, test_images, test_labels), time.time() - t0


def load_cifar10_folder(
  data_dir: str, split: str, cache_dir: str = ''
) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images (N, 32, 32, 3), labels) of data_dir/split, labels from the class folders,
  decoded once into the folder source's cache (`cache_dir`, '': ~/.cache/jaxgan)."""
  if not data_dir:
    raise JaxganError(
      '--data_dir is required with --dataset=cifar10: the CIFAR-10 JPEG folder (train/ and test/ '
      'with one sub-folder per class), e.g. from ../shared/data/cifar10/cifar10-jpg.tar.gz'
    )
  data = ml_collections.ConfigDict(
    {
      'name': 'folder',
      'dir': data_dir,
      'resolution': 32,
      'channels': 3,
      'labels': 'folders',
      'on_bad_file': 'error',
      'resize_filter': 'lanczos',
      'workers': 0,
      'cache_dir': cache_dir,
    }
  )
  dataset = folder.load(data, split)
  if dataset.classes != CIFAR10_CLASSES:
    raise DataError(f"{data_dir}/{split}: class folders {dataset.classes}, not CIFAR-10's")
  return dataset.images, dataset.labels


def make_cifar10_step(optimizer: optax.GradientTransformation, max_shift: int):
  """(variables, opt_state, uint8 images, labels, key) -> (variables, opt_state, loss), jitted:
  random flips and translations (reflected edges), then one SGD step with label smoothing."""
  net = cifar_classifier.CIFARClassifier()

  @jax.jit
  def train_step(variables, opt_state, images, labels, key):
    flip_key, shift_key = jax.random.split(key)
    s = max_shift
    padded = jnp.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), mode='reflect')
    x = to_float(random_shift(shift_key, padded, images.shape[1]))
    flip = jax.random.bernoulli(flip_key, 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, :, ::-1], x)
    targets = optax.smooth_labels(
      jax.nn.one_hot(labels, cifar_classifier.NUM_CLASSES), LABEL_SMOOTHING
    )

    def loss_fn(params):
      (logits, _), updates = net.apply(
        {'params': params, 'batch_stats': variables['batch_stats']},
        x,
        train=True,
        mutable=['batch_stats'],
      )
      return optax.softmax_cross_entropy(logits, targets).mean(), updates['batch_stats']

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables['params'])
    updates, opt_state = optimizer.update(grads, opt_state, variables['params'])
    params = optax.apply_updates(variables['params'], updates)
    return {'params': params, 'batch_stats': batch_stats}, opt_state, loss

  return train_step


def train_cifar10(
  data_dir: str, seed: int, epochs: int, batch_size: int, learning_rate: float, max_shift: int
):
  """Trains on the CIFAR-10 training JPEGs; returns (variables, test accuracy, seconds)."""
  t0 = time.time()
  train_images, train_labels = load_cifar10_folder(data_dir, 'train')
  test_images, test_labels = load_cifar10_folder(data_dir, 'test')
  print(f'{len(train_images)} training and {len(test_images)} test images', flush=True)
  steps_per_epoch = len(train_images) // batch_size  # each epoch's last partial batch dropped
  schedule = optax.join_schedules(
    [
      optax.linear_schedule(0.0, learning_rate, steps_per_epoch),
      optax.linear_schedule(learning_rate, 0.0, (epochs - 1) * steps_per_epoch),
    ],
    [steps_per_epoch],
  )
  optimizer = optax.chain(
    optax.add_decayed_weights(WEIGHT_DECAY, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    optax.sgd(schedule, momentum=0.9, nesterov=True),
  )
  init_key, shuffle_key, aug_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  variables = cifar_classifier.init_variables(init_key)
  opt_state = optimizer.init(variables['params'])
  train_step = make_cifar10_step(optimizer, max_shift)
  variables, test_acc = fit(
    train_step,
    variables,
    opt_state,
    train_images,
    train_labels,
    epochs,
    batch_size,
    shuffle_key,
    aug_key,
    lambda v: accuracy(v, test_images, test_labels, cifar_classifier.classify),
    t0,
  )
  return variables, test_acc, time.time() - t0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  hp = {
    k: v if getattr(FLAGS, k) is None else getattr(FLAGS, k)
    for k, v in DEFAULTS[FLAGS.dataset].items()
  }
  cifar = FLAGS.dataset == 'cifar10'
  out = FLAGS.out or (cifar_classifier.WEIGHTS_PATH if cifar else classifier.WEIGHTS_PATH)
  train_fn = train_cifar10 if cifar else train
  weights, test_acc, seconds = cli.guarded(
    lambda: train_fn(
      FLAGS.data_dir,
      FLAGS.seed,
      hp['epochs'],
      hp['batch_size'],
      hp['learning_rate'],
      FLAGS.max_shift,
    )
  )
  (cifar_classifier.save_variables if cifar else classifier.save_params)(out, weights)
  record = {
    'command': 'python -m jaxgan.evaluation.train_classifier ' + ' '.join(sys.argv[1:]),
    'dataset': FLAGS.dataset,
    'seed': FLAGS.seed,
    **hp,
    'max_shift': FLAGS.max_shift,
    'test_accuracy': test_acc,
    'train_seconds': round(seconds, 1),
    'num_params': sum(x.size for x in jax.tree.leaves(weights.get('params', weights))),
    'sha256': hashlib.sha256(Path(out).read_bytes()).hexdigest(),
    'jax_version': jax.__version__,
    'device': jax.devices()[0].device_kind,
  }
  with open(os.path.splitext(out)[0] + '.json', 'w') as f:
    json.dump(record, f, indent=2)
    f.write('\n')
  print(json.dumps(record))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
