"""Packaging beyond pyproject.toml: ship the top-level ``tasks/`` registry inside the wheel.

``tasks/`` stays at the repository root (the registry people read and edit); the wheel carries it as
``lmeb/registry/`` so ``lmeb.tasks.registry`` finds it with ``importlib.resources`` after ``pip install``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["lmeb", "lmeb.*"]), "lmeb.registry"],
    package_dir={"lmeb.registry": "tasks"},
)
