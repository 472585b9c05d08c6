"""The FID Inception port against pytorch-fid's own network code (random weights), and the
weights loader on tiny torch-saved files. The parity tests need torch, torchvision and
pytorch-fid (the test extra; tests/references.py). Real weights:
tests/test_inception_parity.py; TorchScript files and finding weights:
tests/test_inception_weights.py."""

import hashlib
import io
import logging
import os
import pickle
import zipfile

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan.evaluation import inception, inception_weights, torch_files
from tests import references

# float32 tolerance, relative to the largest |value|. XLA and PyTorch sum the convolutions in
# different orders, so each of the ~95 layers adds a few float32 ulps (1.2e-7); over the whole
# network the features differ by about 6e-7 of their largest value. 1e-5 leaves a 15x margin,
# yet is 1000x below what a real discrepancy gives (BatchNorm eps 1e-5 instead of 1e-3: 1e-2;
# average pools counting the padding: 4e-2).
REL_TOL = 1e-5


def _torch():
  return references.load('torch')


def _pytorch_fid():
  """pytorch_fid.inception (with torch and torchvision)."""
  _torch()
  references.load('torchvision')
  return references.load('pytorch_fid.inception')


@pytest.fixture(scope='module')
def reference():
  """(pytorch-fid's InceptionV3([3]) and its FID Inception (for `fc`), random weights)."""
  torch = _torch()
  pfi = _pytorch_fid()
  import torchvision

  mp = pytest.MonkeyPatch()
  # Build without the download: the loader returns nothing and loading it does nothing.
  mp.setattr(pfi, 'load_state_dict_from_url', lambda *args, **kwargs: None)
  mp.setattr(torchvision.models.inception.Inception3, 'load_state_dict', lambda *args: None)
  try:
    net = pfi.fid_inception_v3()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
      for name, t in net.state_dict().items():
        # He-scaled weights and BatchNorm statistics near 1, so activations neither vanish nor
        # explode over the depth and every layer matters to the features.
        if name.endswith('conv.weight'):
          t.normal_(0, (2 / t[0].numel()) ** 0.5, generator=gen)
        elif name.endswith('bn.weight'):
          t.uniform_(0.5, 1.5, generator=gen)
        elif name.endswith('running_var'):
          t.uniform_(0.5, 2.0, generator=gen)
        elif name.endswith('bn.bias') or name.endswith('running_mean'):
          t.normal_(0, 0.2, generator=gen)
        elif name == 'fc.weight':
          t.normal_(0, 2048**-0.5, generator=gen)
        elif name == 'fc.bias':
          t.normal_(0, 0.1, generator=gen)
    mp.setattr(pfi, 'fid_inception_v3', lambda: net)
    pool3 = pfi.InceptionV3([3], resize_input=True, normalize_input=True)
  finally:
    mp.undo()
  return pool3.eval(), net.eval()


def _reference_outputs(reference, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """pool3 features and the logits without the classifier's bias (the Inception Score's)."""
  import torch

  pool3, net = reference
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255  # as pytorch-fid's ToTensor
  with torch.no_grad():
    features = pool3(x)[0][:, :, 0, 0]
    return features.numpy(), (features @ net.fc.weight.T).numpy()


def _assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
  err, scale = np.abs(np.asarray(ours) - ref).max(), np.abs(ref).max()
  print(f'max error {err:.3g} of max |value| {scale:.3g}')  # shown with pytest -s
  assert err <= REL_TOL * scale, (err, scale)


@pytest.mark.parametrize('size, channels, n', [(32, 3, 2), (64, 1, 3)])
def test_matches_pytorch_fid(reference, size, channels, n):
  """pool3 features and logits as pytorch-fid's (the logits without fc's bias, as the
  Inception Score takes them); grayscale as RGB (PIL's convert('RGB')); the 64 px case runs in
  two chunks (the last padded)."""
  state_dict = {k: v.numpy() for k, v in reference[1].state_dict().items()}
  net = inception.Inception(inception.variables_from_state_dict(state_dict), batch_size=2)
  images = np.random.default_rng(size).integers(0, 256, (n, size, size, channels), np.uint8)
  rgb = np.repeat(images, 3, -1) if channels == 1 else images
  ref_features, ref_logits = _reference_outputs(reference, rgb)
  # On GPUs XLA may use TF32 in convolutions; the comparison is of the float32 network.
  with jax.default_matmul_precision('float32'):
    emb = net.embed(images)
  assert emb.features.shape == (n, 2048) and emb.features.dtype == np.float32
  assert emb.probs.shape == (n, 1, 1008)
  _assert_close(emb.features, ref_features)
  # The logits up to their log-sum-exp, which the softmax drops.
  shifted = ref_logits - ref_logits.max(-1, keepdims=True)
  ref_log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  _assert_close(np.log(emb.probs[:, 0]), ref_log_probs)
  np.testing.assert_allclose(emb.probs.sum(-1), 1, rtol=1e-5)


@pytest.mark.parametrize('shape', [(32, 32), (64, 48), (7, 299), (500, 300)])
def test_resize_is_f_interpolate(shape):
  """Bilinear without antialiasing, as F.interpolate(align_corners=False), up and down."""
  torch = _torch()
  images = np.random.default_rng(0).integers(0, 256, (2, *shape, 3), np.uint8)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
  ref = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
  ref = (2 * ref - 1).permute(0, 2, 3, 1).numpy()
  ours = np.asarray(jax.jit(inception.preprocess)(images))
  # A few float32 ulps of 1 (1.2e-7), from the order of the additions; antialiasing or other
  # source positions would differ by 1e-2 and more.
  np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-7)


_preprocess = jax.jit(inception.preprocess, static_argnames='resize')


@pytest.mark.parametrize('shape', [(32, 32), (64, 48), (7, 299), (500, 300)])
def test_legacy_tensorflow_resize(shape):
  """TensorFlow 1's resize_bilinear (output pixel j reads source position j * in / 299, no
  half-pixel shift, the last pixel repeated past the edge), as grid_sample computes it from
  such positions, then (x - 128) / 128: what NVIDIA's network file does inside."""
  torch = _torch()
  images = np.random.default_rng(1).integers(0, 256, (2, *shape, 3), np.uint8)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).double()
  h, w = shape

  def normalized(size):  # grid_sample (align_corners=False) reads pixel p at (2p + 1) / size - 1
    return torch.tensor([(2 * (j * size / 299) + 1) / size - 1 for j in range(299)])

  gy, gx = torch.meshgrid(normalized(h), normalized(w), indexing='ij')
  grid = torch.stack([gx, gy], -1)[None].repeat(2, 1, 1, 1).double()
  ref = torch.nn.functional.grid_sample(
    x, grid, mode='bilinear', padding_mode='border', align_corners=False
  )
  ref = ((ref - 128) / 128).permute(0, 2, 3, 1).numpy()
  ours = np.asarray(_preprocess(images, resize='legacy_tensorflow'))
  # float32 positions and weights against float64: 1e-6 of a pixel step at most. The
  # pytorch-fid resize instead differs by up to 0.2 (its half-pixel shift).
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize('shape', [(32, 32), (64, 48), (500, 300)])
def test_clean_resize_is_pils_bicubic(shape):
  """clean-fid's resize: each channel as a float ('F') PIL image, bicubic (antialiased when
  shrinking) to 299x299, clipped to [0, 255]; then (x - 128) / 128."""
  images = np.random.default_rng(2).integers(0, 256, (2, *shape, 3), np.uint8)
  ref = np.stack(
    [
      np.stack(
        [
          np.asarray(
            Image.fromarray(image[..., c].astype(np.float32), mode='F').resize(
              (299, 299), Image.Resampling.BICUBIC
            )
          )
          for c in range(3)
        ],
        -1,
      )
      for image in images
    ]
  )
  ref = (np.clip(ref, 0, 255) - 128) / 128
  ours = np.asarray(_preprocess(images, resize='clean'))
  # PIL sums in double, the matrix products in float32: a few ulps of 255 / 128.
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


def test_check_accepts_any_size_with_1_or_3_channels():
  net = inception.Inception.__new__(inception.Inception)
  for shape in [(2, 28, 28, 1), (5, 32, 32, 3), (1, 1024, 768, 3)]:
    net.check(shape)
  with pytest.raises(ValueError, match='1 channel'):
    net.check((2, 32, 32, 4))


# ---------------------------------------------------------------------------------------------
# Weights files
# ---------------------------------------------------------------------------------------------


def _tiny_state_dict(torch):
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  return {
    'conv.weight': base,
    'transposed': base.t(),  # non-contiguous: strides (1, 6)
    'slice': base[1:3, 2:5],  # an offset into a shared storage
    'double': torch.tensor([0.5, -2.0], dtype=torch.float64),
    'bn.num_batches_tracked': torch.tensor(7),  # 0-d int64
    'half': torch.tensor([1.5, 3.0], dtype=torch.float16),
  }


@pytest.mark.parametrize('zip_format', [True, False])
def test_reads_torch_save_in_both_formats(tmp_path, zip_format):
  torch = _torch()
  state_dict = _tiny_state_dict(torch)
  path = tmp_path / 'tiny.pth'
  torch.save(state_dict, path, _use_new_zipfile_serialization=zip_format)
  assert zipfile.is_zipfile(path) == zip_format
  got = torch_files.read(path.read_bytes())
  assert got.kind == torch_files.STATE_DICT
  got = got.tensors
  assert got.keys() == state_dict.keys()
  for name, t in state_dict.items():
    assert got[name].dtype == t.numpy().dtype and got[name].shape == tuple(t.shape), name
    np.testing.assert_array_equal(got[name], t.numpy(), err_msg=name)


def test_load_maps_every_variable(reference, tmp_path, caplog):
  """load() end to end on a tiny torch-saved file with pytorch-fid's names and shapes: each
  tensor a broadcast constant (stride 0, one stored element) telling which name it came from.
  The file is not the published one, so it loads only with allow_unverified, and warns."""
  torch = _torch()
  names = list(reference[1].state_dict())
  state_dict = {
    name: torch.full((1,), float(i)).expand(t.shape)
    for i, (name, t) in enumerate(reference[1].state_dict().items())
    if t.dtype == torch.float32
  }
  path = tmp_path / 'inception.pth'
  torch.save(state_dict, path)
  assert path.stat().st_size < 200_000
  with pytest.raises(inception.WeightsError, match='SHA-256'):
    inception.load(str(path))
  with caplog.at_level(logging.WARNING):
    net = inception.load(str(path), allow_unverified=True)
  assert 'not a known file' in caplog.text
  assert net.name == 'inception' and net.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
  assert net.logits and 'pytorch-fid state dict' in net.weights
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get(net._variables))[0]
  assert len(flat) == len(state_dict)
  leaf_names = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias'}
  leaf_names.update(mean='running_mean', var='running_var')
  for keys, value in flat:
    parts = [k.key for k in keys[1:]]
    name = '.'.join([*parts[:-1], leaf_names[parts[-1]]])
    assert np.all(value == names.index(name)), name


def _error_line(**kwargs) -> str:
  with pytest.raises(inception.WeightsError) as e:
    inception.load(**kwargs)
  message = str(e.value)
  assert '\n' not in message
  return message


def test_missing_file_is_one_line_saying_where_to_get_it(tmp_path, monkeypatch):
  message = _error_line(path=str(tmp_path / 'absent.pth'))
  assert 'No such file' in message
  assert 'fid_weights' in message and inception_weights.WEIGHTS_FILE in message
  monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / 'from_env.pth'))
  assert 'from_env.pth' in _error_line()


def test_wrong_hash_is_refused_unless_allowed(tmp_path):
  path = tmp_path / 'other.pth'
  path.write_bytes(b'not the weights')
  assert 'SHA-256' in _error_line(path=str(path))
  # Allowed, the file is read, and being no checkpoint gives the same kind of one-line error.
  assert 'not a PyTorch file' in _error_line(path=str(path), allow_unverified=True)


class _Exploit:
  def __reduce__(self):
    return os.system, ('echo pwned > "$PWN_MARKER"',)


@pytest.mark.parametrize('zip_format', [True, False])
def test_forbidden_global_is_refused(tmp_path, monkeypatch, zip_format):
  marker = tmp_path / 'pwned'
  monkeypatch.setenv('PWN_MARKER', str(marker))
  payload = pickle.dumps({'conv.weight': _Exploit()}, protocol=2)
  if zip_format:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
      z.writestr('archive/data.pkl', payload)
    data = buf.getvalue()
  else:
    data = b''.join(pickle.dumps(x, protocol=2) for x in (torch_files.LEGACY_MAGIC, 1001, {}))
    data += payload
  path = tmp_path / 'evil.pth'
  path.write_bytes(data)
  message = _error_line(path=str(path), allow_unverified=True)
  assert 'refusing' in message and 'system' in message
  assert not marker.exists()
