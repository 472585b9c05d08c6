"""DiffAugment on 10% of CIFAR-10 (Zhao et al. 2020): the DCGAN recipe on 5,000 images.

  python -m jaxgan.main --config=configs/cifar10_diffaug_10pct.py:folder \
    --workdir=runs/cifar10_diffaug_10pct --config.data.dir=/tmp/data/cifar10-jpg
  # the same run without augmentation, for comparison:
  ...  --config.train.augment=''

configs/cifar10_dcgan.py on a fixed random 10% of the training images (data.subset=5000, the
same 5,000 in every run), with colour, translation and cutout applied to every image D sees,
real and fake, in D's and G's steps, always (augment_p=1, as DiffAugment does). With so few
images D memorises the training set and its gradients stop teaching G; augmenting both sides
differentiably keeps D from it without the augmentations leaking into the samples.
--config.train.augment_p=adaptive tunes the probability instead (ADA, Karras et al. 2020).
Evaluation: 10,000 samples against the 10,000 test images, as in configs/cifar10_dcgan.py.

The augmentation costs little beside the DCGAN's own step. In a short CPU run the two were
about even (docs/results.md, "DiffAugment on 10% of CIFAR-10"): the effect the paper reports
needs far longer training, a GPU's job (e.g. --config.num_steps=20000).
"""

import ml_collections

from jaxgan.configs import cifar10_dcgan


def get_config(source: str = '') -> ml_collections.ConfigDict:
  config = cifar10_dcgan.get_config(source)
  config.data.subset = 5000  # 10% of the 50,000 training images
  # DCGAN's learning rates, with which the comparison in docs/results.md was measured.
  config.optim.g_lr = config.optim.d_lr = 2e-4
  config.train.augment = 'color,translation,cutout'
  config.train.augment_p = 1.0
  return config
