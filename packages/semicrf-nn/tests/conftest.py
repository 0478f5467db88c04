"""Shared setup of the semicrf-nn tests (tiny sizes: brute-force enumeration is the truth)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

# Make the helper module next to the tests importable (pytest runs with --import-mode=importlib,
# which does not put test directories on sys.path).
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield
