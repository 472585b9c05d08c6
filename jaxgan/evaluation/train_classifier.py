"""Trains the MNIST feature classifier and writes the weights that jaxgan ships.

  python -m jaxgan.evaluation.train_classifier --data_dir=../shared/data/mnist

Deterministic for a given --seed on a given machine (initialisation and shuffling come from it).
Writes `--out` (msgpack parameters) and, beside it, a .json file recording how it was made.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxgan import cli
from jaxgan.data import mnist
from jaxgan.evaluation import classifier
from jaxgan.images import to_float

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', '', 'Folder with the MNIST IDX files; empty: download and cache.')
flags.DEFINE_integer('seed', 0, 'Seeds initialisation and shuffling.')
flags.DEFINE_integer('epochs', 3, 'Passes over the 60,000 training images.')
flags.DEFINE_integer('batch_size', 128, 'Training batch size.')
flags.DEFINE_float('learning_rate', 1e-3, 'Peak Adam learning rate (cosine decay to 0).')
flags.DEFINE_integer('max_shift', 2, 'Augmentation: random translations of up to this many pixels.')
flags.DEFINE_string('out', classifier.WEIGHTS_PATH, 'Where to write the weights (msgpack).')


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


def accuracy(params, images: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of `images` whose most probable class is their label."""
  _, probs = classifier.classify(images, params)
  return float(np.mean(probs.argmax(-1) == labels))


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
  for epoch in range(epochs):
    order = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), len(padded)))
    losses = []
    for i in range(steps_per_epoch):
      idx = order[i * batch_size : (i + 1) * batch_size]
      key = jax.random.fold_in(shift_key, epoch * steps_per_epoch + i)
      params, opt_state, loss = train_step(params, opt_state, padded[idx], train_labels[idx], key)
      losses.append(loss)
    mean_loss = float(jnp.mean(jnp.stack(losses)))
    print(
      f'epoch {epoch + 1}/{epochs}: loss {mean_loss:.4f} ({time.time() - t0:.0f} s)', flush=True
    )
  return params, accuracy(params, test_images, test_labels), time.time() - t0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  params, test_acc, seconds = cli.guarded(
    lambda: train(
      FLAGS.data_dir,
      FLAGS.seed,
      FLAGS.epochs,
      FLAGS.batch_size,
      FLAGS.learning_rate,
      FLAGS.max_shift,
    )
  )
  classifier.save_params(FLAGS.out, params)
  record = {
    'command': 'python -m jaxgan.evaluation.train_classifier ' + ' '.join(sys.argv[1:]),
    'seed': FLAGS.seed,
    'epochs': FLAGS.epochs,
    'batch_size': FLAGS.batch_size,
    'learning_rate': FLAGS.learning_rate,
    'max_shift': FLAGS.max_shift,
    'test_accuracy': test_acc,
    'train_seconds': round(seconds, 1),
    'num_params': sum(x.size for x in jax.tree.leaves(params)),
    'sha256': hashlib.sha256(Path(FLAGS.out).read_bytes()).hexdigest(),
    'jax_version': jax.__version__,
    'device': jax.devices()[0].device_kind,
  }
  with open(os.path.splitext(FLAGS.out)[0] + '.json', 'w') as f:
    json.dump(record, f, indent=2)
    f.write('\n')
  print(json.dumps(record))


if __name__ == '__main__':
  app.run(main)
