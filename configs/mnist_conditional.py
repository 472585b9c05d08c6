"""Class-conditional DCGAN on MNIST: G gets a class embedding, D is a projection discriminator.

  python -m jaxgan.main --config=configs/mnist_conditional.py --workdir=runs/mnist_conditional

Sample grids have one row per digit (a column shares one latent).

Runtime: measured with `--config.num_steps=100` on this 2-core CPU while it was shared (load
~4.7): 2.5-2.7 steps/s after a 11 s compile, where configs/mnist.py ran 2.5-4.2 steps/s; the
default's speed: 5000 steps in 30-35 minutes. Uncontended, scale by configs/mnist.py's own
speed.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.model.conditional = True
  config.data.num_classes = 10
  config.num_grid_samples = 100  # 10 rows (digits) x 10 columns (latents)
  return config
