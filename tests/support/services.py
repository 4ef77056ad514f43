"""Services as separate processes, started exactly as ``make run`` starts them."""
import uuid
from contextlib import ExitStack, contextmanager

import requests

from devstack.processes import http_ok, service_env, start_service, wait_until
from tests.support.ports import free_port

# Fast retries and timers, so failure paths finish within a test.
TEST_TUNING = {
    "RETRY_MAX_ATTEMPTS": "3",
    "RETRY_DELAY_SECONDS": "0.2",
    "RETRY_MAX_DELAY_SECONDS": "1",
    "ANNOUNCE_INTERVAL_SECONDS": "0.5",
    "ANNOUNCE_CLAIM_SECONDS": "1",
    "LOG_LEVEL": "INFO",
    "ROUTING_AREA_INDEX": "false",  # see routing's config.yml; tests/unit/routing/test_storage.py covers it
    # Tests of locating, assigning and escalating take the classifier's top class however
    # sure it is; tests/e2e/test_routing_dispatch.py runs with the shipped threshold.
    "ROUTING_CONFIDENCE_THRESHOLD": "0",
}


_identity = {}


def set_active_identity(identity):
    """The provider the services of this test session trust (see tests/conftest.py)."""
    _identity["active"] = identity


def authorized_session(principal):
    """A ``requests.Session`` that sends ``principal``'s bearer token (a demo user id,
    or a client id such as ``alertmanager`` or ``integrator-hotline12345``)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {_identity['active'].cached_token(principal)}"
    return session


class RunningService:
    def __init__(self, name, process, port):
        self.name = name
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path):
        return self.base_url + path

    def as_user(self, principal):
        return authorized_session(principal)

    @property
    def as_admin(self):
        """The county administrator: may do what any staff role may."""
        return authorized_session("county-admin")


@contextmanager
def running_service(name, *, amqp_uri, mongo_uri, log_dir, database=None, extra_env=None):
    port = free_port()
    env = service_env(
        name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, port=port,
        database=database or f"{name}_{uuid.uuid4().hex[:8]}",
        extra={**TEST_TUNING, **(extra_env or {})},
    )
    process = start_service(name, env, log_dir / f"{name}-{port}.log")
    service = RunningService(name, process, port)
    try:
        wait_until(lambda: http_ok(service.url("/health")), 60, f"{name} answered /health", process=process)
        yield service
    finally:
        process.stop()


@contextmanager
def running_platform(names, *, amqp_uri, mongo_uri, log_dir, extra_env=None, replicas=None):
    """Several services (``replicas`` maps a name to a process count), each
    service's processes sharing one database; yields ``{name: [RunningService]}``."""
    run_id = uuid.uuid4().hex[:8]
    started = {}
    with ExitStack() as stack:
        for name in names:
            for _ in range((replicas or {}).get(name, 1)):
                service = stack.enter_context(running_service(
                    name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                    database=f"{name}_{run_id}", extra_env=extra_env,
                ))
                started.setdefault(name, []).append(service)
        yield started
