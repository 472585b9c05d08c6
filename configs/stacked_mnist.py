"""Stacked MNIST (28x28x3, three random digits, 1000 modes): the default DCGAN, mode coverage.

  python -m jaxgan.main --config=configs/stacked_mnist.py --workdir=runs/stacked_mnist
  python -m jaxgan.evaluate --workdir=runs/stacked_mnist  # modes_covered out of 1000, mode_kl

configs/mnist.py's DCGAN and training as they are (200 k-means clusters of the stacked
images, mode seeking, 4,000 steps; the generator takes its output shape from the data),
evaluated on the literature's 26,000 samples: all 1000 modes, mode KL 0.17 (docs/results.md).
With the previous default's settings (100 clusters, no mode seeking) the whole command took
12 min 10 s on the 2-core CPU of docs/results.md (k-means 18 s, training at 6.3-7.6 steps/s,
the 26,000-sample evaluation 90 s), and its KL was 0.168.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'stacked_mnist'
  config.data.stacked_size = 60_000  # images built from the split, seed 0
  config.eval_num_samples = 26_000  # as PacGAN and VEEGAN count modes
  config.eval_every = config.num_steps
  return config
