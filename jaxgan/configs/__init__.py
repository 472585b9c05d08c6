"""The shipped configs, installed with the package: `--config=mnist` (or `--config=NAME:ARGS`)
names one, `from jaxgan.configs import mnist` imports one. In a checkout, `configs/` links here.
"""

from pathlib import Path

DIR = Path(__file__).resolve().parent
# common.py is what the recipes build on, not a recipe.
NAMES = tuple(sorted(p.stem for p in DIR.glob('*.py') if p.stem not in ('__init__', 'common')))
