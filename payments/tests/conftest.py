"""Fixtures for the payments tests."""

import pytest

# --- localstripe: a Stripe-compatible server on loopback, for the Stripe provider's tests -------


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    """Start localstripe on a free port for the test session and yield its base URL.

    The tests that need it are skipped, with the reason, when it cannot be found or started.
    """
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    bin_dir = Path(sys.executable).parent
    executable = shutil.which("localstripe", path=str(bin_dir)) or shutil.which("localstripe")
    if not executable:
        pytest.skip(f"localstripe is not installed (looked in {bin_dir} and on PATH)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log_path.open("wb") as log:
        # --from-scratch: never load the store another localstripe left in /tmp.
        process = subprocess.Popen(
            [executable, "--port", str(port), "--from-scratch"],
            stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.skip(
                    f"localstripe exited with {process.returncode} on start: "
                    f"{log_path.read_text(errors='replace')[-500:]}"
                )
            try:
                answer = requests.get(
                    f"{base_url}/v1/customers", auth=("sk_test_12345", ""), timeout=1
                )
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.skip(f"localstripe did not answer on {base_url} within 20 s")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def localstripe(localstripe_server, settings):
    """Empty localstripe's store, point the Stripe settings at it, and return its base URL."""
    import requests

    requests.delete(f"{localstripe_server}/_config/data", timeout=5).raise_for_status()
    settings.STRIPE_API_BASE = localstripe_server
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    settings.STRIPE_WEBHOOK_TOLERANCE = 300
    return localstripe_server


# --- The payment pipeline: the test provider, tasks run in the test's process -----------------


@pytest.fixture
def test_provider(settings):
    """Offer only the built-in test provider, signing with a fixed secret; return it."""
    from payments.providers import provider_get

    settings.PAYMENTS_TEST_PROVIDER = True
    settings.PAYMENTS_TEST_WEBHOOK_SECRET = "whsec_test_provider"
    settings.PAYMENTS_WEBHOOK_TOLERANCE = 300
    settings.STRIPE_SECRET_KEY = ""
    return provider_get("test")


@pytest.fixture
def celery_eager(settings):
    """Run tasks in the test's process, also when REDIS_URL points the app at a real broker (no
    worker consumes it during tests). The Celery app read its settings at start-up: set both."""
    from payments.tasks import webhook_event_process

    conf = webhook_event_process.app.conf
    was_eager = conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    conf.task_always_eager = True
    yield
    conf.task_always_eager = was_eager
