"""Tests of the Django demo (demo/django_app): a package, so that its conftest does not
shadow python/tests/conftest.py as the module ``conftest``."""
