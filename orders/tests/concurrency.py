"""Running calls in threads released together, for the concurrency tests on PostgreSQL."""

import threading
from collections.abc import Callable

from django.db import connection

JOIN_SECONDS = 20


def run_together(calls: list[Callable[[], object]]) -> list[tuple[str, object]]:
    """Run every call in its own thread, all released at once; return ("ok", result) or
    ("error", exception) per call, in the calls' order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[tuple[str, object]] = [("missing", None)] * len(calls)

    def work(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = ("ok", call())
        except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            outcomes[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return outcomes
