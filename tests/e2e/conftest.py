"""Fixtures of the end-to-end tests: a real head office (gunicorn + a PostgreSQL database of its
own), from live_hq.py, which the fault tests import too."""

from tests.e2e.live_hq import hq_env, live_hq

__all__ = ["hq_env", "live_hq"]
