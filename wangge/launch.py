"""``wangge-service NAME``: run one Wangge service under nameko.

Before nameko starts it checks the broker and the store (a service that cannot
reach either exits with one line naming the URI, not a stack trace) and
declares the exchanges and queues the service needs (its own and those bound to
what it publishes), so nothing it publishes before its consumers first run is dropped.
"""
import eventlet

eventlet.monkey_patch()  # before anything imports pymongo or kombu

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging.config  # noqa: E402
import sys  # noqa: E402

from kombu import Connection  # noqa: E402
from nameko.cli.run import run  # noqa: E402

from wangge import topology  # noqa: E402
from wangge.diagnostics import dump_stacks_on  # noqa: E402
from wangge.config import SERVICE_NAMES, load_config, service_config_path  # noqa: E402
from wangge.logs import logging_config  # noqa: E402
from wangge.preflight import broker_problem, store_problem  # noqa: E402


def declare_platform_topology(amqp_uri, service_name):
    with Connection(amqp_uri) as connection:
        topology.declare_topology(connection, service_name)


def service_class(service_name):
    """The class named ``service_name`` in services/<name>/service.py (a module also
    holds mixins with entrypoints, which nameko's own lookup would take for services)."""
    module = importlib.import_module(f"services.{service_name}.service")
    return next(obj for obj in vars(module).values() if isinstance(obj, type) and getattr(obj, "name", None) == service_name)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="wangge-service", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=SERVICE_NAMES)
    parser.add_argument("--config", help="YAML config (default: services/NAME/config.yml)")
    args = parser.parse_args(argv)
    dump_stacks_on()  # kill -USR1: what every green thread is doing, in the log (never the end of the process)

    config = load_config(args.config or service_config_path(args.service))
    logging.config.dictConfig(logging_config(config.get("LOG_LEVEL", "INFO")))

    problem = broker_problem(config["AMQP_URI"]) or store_problem(config["MONGO_URI"])
    if problem:
        print(f"wangge-service {args.service}: {problem}", file=sys.stderr)
        return 2
    declare_platform_topology(config["AMQP_URI"], args.service)

    run([service_class(args.service)], config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
