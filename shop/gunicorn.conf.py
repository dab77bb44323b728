"""Gunicorn settings for the shop (`gunicorn -c shop/gunicorn.conf.py shop.wsgi`).

Every value can be set from the environment; docs/deploy.md explains the choices and how the
database connections add up (app servers × WEB_CONCURRENCY × WEB_THREADS).
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Threads overlap the time a request waits on PostgreSQL or Redis; processes use the cores.
# Each thread may hold one database connection: size PostgreSQL for workers × threads per server.
workers = _int("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count()))
worker_class = "gthread"
threads = _int("WEB_THREADS", 8)
# Connections one worker keeps open at once, idle keep-alive ones included. Idle keep-alive
# connections count, so a low value leaves new requests waiting in the backlog until one times
# out (measured with `make bench-flash`: 100 left product pages waiting over 30 s under 200
# buyers); gunicorn's default of 1000 is kept.
worker_connections = _int("WEB_WORKER_CONNECTIONS", 1000)
# A worker whose main loop is silent this long is killed and replaced. With gthread this is not
# a per-request limit: statement_timeout (DATABASE_STATEMENT_TIMEOUT_MS) bounds slow requests.
timeout = _int("WEB_TIMEOUT", 30)
# On a deploy or a recycle, requests in progress get this long to finish.
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30)
# Seconds an idle keep-alive connection is kept. Directly facing browsers, a few seconds; behind a
# load balancer that reuses connections, more than its idle timeout (so the app never closes a
# connection the balancer is just sending on, which the customer would see as a 502).
keepalive = _int("WEB_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak can never take a server down; the jitter keeps them
# from all restarting at once.
max_requests = _int("WEB_MAX_REQUESTS", 20000)
max_requests_jitter = max_requests // 10
# Connections waiting to be accepted; beyond this the kernel refuses them. Admission control
# answers a refused hot request in about a millisecond, so even a full backlog drains quickly.
backlog = _int("WEB_BACKLOG", 2048)
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
