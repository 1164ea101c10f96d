# Kept for the paper's `pip install -e .` workflow; all metadata lives in pyproject.toml.
from setuptools import setup

setup()
