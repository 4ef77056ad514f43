"""/health/live: a consumer that has stopped looking for deliveries while the broker
answers is stuck (503, so the orchestrator restarts the process); one away while the
broker is away is reconnecting, and the process stays alive."""
from types import SimpleNamespace

from nameko.testing.services import worker_factory

from services.notify.service import NotifyService
from wangge.amqp_consumer import ResilientQueueConsumer
from wangge.config import load_service_config

CONFIG = load_service_config("notify")
LIMIT = float(CONFIG["CONSUMER_STALL_SECONDS"])


def notify_with(idle_seconds, broker_problem):
    service = worker_factory(NotifyService, config=CONFIG, consumer_idle_seconds=lambda: idle_seconds)
    service._broker_problem = lambda timeout: broker_problem
    return service


def test_a_consumer_that_looks_for_deliveries_is_alive():
    answer = notify_with(0.4, None).liveness(None)
    assert answer == {"status": "alive", "service": "notify", "consumer_idle_seconds": 0.4}


def test_a_consumer_away_longer_than_the_limit_while_the_broker_answers_is_stuck():
    status, answer = notify_with(LIMIT + 1, None).liveness(None)
    assert status == 503 and answer["status"] == "stuck"
    assert "broker answers" in answer["reason"]


def test_a_consumer_away_while_the_broker_is_away_is_reconnecting_not_stuck():
    answer = notify_with(LIMIT + 1, "Connection refused").liveness(None)
    assert answer["status"] == "alive"


def test_a_service_without_a_consumer_is_alive():
    assert notify_with(None, None).liveness(None)["consumer_idle_seconds"] is None


def test_each_pass_of_the_consumers_loop_is_noted():
    consumer = ResilientQueueConsumer()
    consumer.last_pass -= 500
    assert consumer.seconds_since_last_pass() >= 500
    consumer._consumers = {"a provider": object()}  # nameko stops a consumer that has none
    consumer.on_iteration()
    assert consumer.seconds_since_last_pass() < 1


def test_a_consumer_trying_to_connect_again_and_again_is_not_stuck():
    consumer = ResilientQueueConsumer()
    consumer.container = SimpleNamespace(config={"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"})  # (named in its warning)
    consumer.last_pass -= 500
    consumer.on_connection_error(ConnectionRefusedError("refused"), 2)
    assert consumer.seconds_since_last_pass() < 1


def test_a_config_file_of_an_earlier_release_without_the_limit_takes_the_default():
    config = {key: value for key, value in CONFIG.items() if key != "CONSUMER_STALL_SECONDS"}
    service = worker_factory(NotifyService, config=config, consumer_idle_seconds=lambda: 119)
    service._broker_problem = lambda timeout: None
    assert service.liveness(None)["status"] == "alive"
    service.consumer_idle_seconds = lambda: 121
    assert service.liveness(None)[0] == 503
