"""Test-run settings: chosen before Django loads, so every test process agrees."""

import os

os.environ.setdefault("ERP_ENV", "test")
