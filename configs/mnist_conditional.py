"""Class-conditional DCGAN on MNIST: G gets a class embedding, D is a projection discriminator.

  python -m jaxgan.main --config=configs/mnist_conditional.py --workdir=runs/mnist_conditional

Sample grids have one row per digit (a column shares one latent).

Runtime: 2,000 iterations trained in 420 s (4.8 steps/s) on the 2-core CPU of
docs/results.md, shared with other work, so its 5,000 take at most about 18 minutes, plus
compilation and 6-10 s per evaluation. What it reached at 1,000 and 2,000: docs/results.md.
"""

from configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.model.conditional = True
  config.data.num_classes = 10
  config.num_grid_samples = 100  # 10 rows (digits) x 10 columns (latents)
  return config
