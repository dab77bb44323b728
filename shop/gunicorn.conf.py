"""Gunicorn settings for the shop (`gunicorn -c shop/gunicorn.conf.py shop.wsgi`).

Every value can be set from the environment; docs/deploy.md explains the choices.
"""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Threads overlap the time a request waits on PostgreSQL or Redis; processes use the cores.
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# A request that takes longer than this is killed and its worker replaced.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak can never take a server down.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Waiting connections beyond this are refused by the kernel rather than queued forever.
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
