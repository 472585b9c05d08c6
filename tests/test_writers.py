import io
import json

import numpy as np

from jaxgan import images as images_lib
from jaxgan import writers


def test_image_grid_layout():
  images = np.full((5, 4, 3, 1), -1.0, np.float32)
  images[4] = 1.0  # the fifth image white
  grid = images_lib.grid(images, pad=1)
  # 5 images -> 3 columns x 2 rows of 4x3 tiles with 1-pixel borders.
  assert grid.shape == (2 * 5 + 1, 3 * 4 + 1, 1) and grid.dtype == np.uint8
  assert grid[6:10, 5:8].min() == 255 and grid[1:5, 1:4].max() == 0


def test_status_line():
  m = dict(
    d_loss=1.2, g_loss=0.8, d_real=0.6, d_fake=0.4, steps_per_sec=10.0, d_skipped=0.0, g_skipped=3.0
  )
  line = writers.status_line(100, 700, m)
  assert line.startswith('step 100/700 | d_loss 1.2000 g_loss 0.8000')
  assert 'D(x) 0.600 D(G(z)) 0.400' in line and '10.00 steps/s | ETA 1m00s' in line
  assert 'skipped D 0 G 3' in line


class _FakeTTY(io.StringIO):
  def isatty(self):
    return True


def test_progress_only_on_a_terminal():
  tty, pipe = _FakeTTY(), io.StringIO()
  for stream in (tty, pipe):
    p = writers.progress(100, initial=5, stream=stream)
    p.update(5)
    p.refresh()  # tqdm redraws at most every 0.1 s
    p.close()
  assert '10/100' in tty.getvalue() and pipe.getvalue() == ''


def test_metric_writer_appends_and_truncates(tmp_path):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  for step in (10, 20, 30):
    w.write_scalars(step, {'d_loss': float(step)})
  w.close()
  writers.MetricWriter(str(tmp_path), resume_step=20, tensorboard=False).close()
  rows = [json.loads(ln) for ln in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == [10, 20]
