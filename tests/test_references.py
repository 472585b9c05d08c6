"""The reference packages: each one the test extra lists imports, and a missing one skips its
tests, or fails them under JAXGAN_REQUIRE_REFERENCES=1 (CI)."""

import tomllib

import pytest

from tests import references
from tests.conftest import REPO


@pytest.mark.parametrize('name', sorted(references.PACKAGES))
def test_reference_package_imports(name):
  references.load(name)  # a skip here names a package that the README's install did not bring


def test_the_test_extra_installs_every_reference_package():
  with open(REPO / 'pyproject.toml', 'rb') as f:
    extra = tomllib.load(f)['project']['optional-dependencies']['test']
  assert set(references.PACKAGES.values()) <= set(extra)


def test_a_missing_package_skips_or_fails_when_required(monkeypatch):
  monkeypatch.setitem(references.PACKAGES, 'jaxgan_no_such_package', 'jaxgan-no-such-package')
  monkeypatch.delenv(references.REQUIRE, raising=False)
  with pytest.raises(pytest.skip.Exception, match='jaxgan_no_such_package not importable'):
    references.load('jaxgan_no_such_package')
  monkeypatch.setenv(references.REQUIRE, '1')
  with pytest.raises(pytest.fail.Exception, match='JAXGAN_REQUIRE_REFERENCES=1'):
    references.load('jaxgan_no_such_package')
  with pytest.raises(ValueError, match='not a reference package'):
    references.load('numpy')
