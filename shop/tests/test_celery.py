"""The Celery app is wired as the settings say: safe redelivery, JSON only, one task at a time."""

from shop.celery import app


def test_celery_reads_the_shop_settings():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_redis_redelivers_only_after_the_longest_task_has_ended():
    conf = app.conf
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit


def test_tasks_run_eagerly_without_a_broker(settings):
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    if settings.CELERY_BROKER_URL == "memory://":
        assert app.conf.task_always_eager is True
        assert add.delay(2, 3).get() == 5
    else:
        assert app.conf.task_always_eager is False
