"""Gunicorn settings for the Tillbook web container (``gunicorn -c docker/gunicorn.conf.py``).

Every knob reads an environment variable so compose can tune it without a rebuild:

    GUNICORN_BIND             0.0.0.0:8000
    GUNICORN_WORKERS          worker processes (or WEB_CONCURRENCY, gunicorn's own name; never
                              set that one to an empty string: gunicorn int()s it on import);
                              default 2 * usable cores + 1, at most
    GUNICORN_MAX_WORKERS      ... this cap (8): each worker holds its own database connection
    GUNICORN_THREADS          threads per worker (1: plain sync workers)
    GUNICORN_TIMEOUT          seconds a request may run before its worker is killed (60)
    GUNICORN_GRACEFUL_TIMEOUT seconds to finish in-flight requests on SIGTERM (30)
    GUNICORN_KEEPALIVE        seconds to hold an idle keep-alive connection (5)
    GUNICORN_LOG_LEVEL        info
    FORWARDED_ALLOW_IPS       proxies trusted for X-Forwarded-* ("*": only nginx can reach
                              port 8000, which compose does not publish)

Long work (posting, reconciliation, close) runs on Celery, so requests are short; the timeout
only has to cover the largest synchronous request, a 10,000-row bulk upsert.
"""

from __future__ import annotations

import os


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SystemExit(f"{name} must be >= {minimum}, got {value}")
    return value


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours cpusets (docker --cpuset-cpus)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]

max_workers = _int("GUNICORN_MAX_WORKERS", 8)
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", min(2 * _cores() + 1, max_workers)))
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"

timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so a slow leak cannot grow without bound; jitter keeps them from
# restarting all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200, minimum=0)

# The worker heartbeat file on tmpfs, not on the container's overlay filesystem, where a slow
# disk could make the arbiter think a healthy worker hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# nginx is the only client. It sets X-Forwarded-Proto and X-Forwarded-For; Django itself reads
# X-Forwarded-Proto through SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")

# Logs to stdout/stderr, for `docker compose logs`. The client address is nginx's, so the
# access log also shows the forwarded one.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s fwd=%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'

# Headers of a request are bounded (bodies are bounded by nginx and Django).
limit_request_line = 8190
limit_request_fields = 100
