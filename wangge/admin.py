"""``wangge-admin``: operator commands.

    wangge-admin dead-letters list QUEUE [--limit N] [--json]
    wangge-admin dead-letters replay QUEUE (--all | --id ID ...)
    wangge-admin topology declare
    wangge-admin topology migrate [--integrator SOURCE ...]
                                            (classic queues of an earlier version to quorum queues; services stopped)
    wangge-admin topology definitions
    wangge-admin grids load FILE            (YAML or JSON; through routing's HTTP API)
    wangge-admin classifier corrections [--since ISO] [--output FILE]
                                            (classes dispatchers gave, as corpus rows)
    wangge-admin rabbitmq setup             (users, permissions, topology; passwords from the environment)
    wangge-admin integrators (add|rotate|disable) SOURCE | list
                                            (a broker account and an Open311 API key per system;
                                            add and rotate print its password, then the key last)
    wangge-admin token (--user ID | --client ID)   (from the local identity provider of `make run`)

Commands through a service's HTTP API (grids, classifier, integrators) send the bearer
token in WANGGE_API_TOKEN (a county administrator's), from the environment only.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import amqp.exceptions
import requests
import yaml

from kombu import Connection
from nameko.amqp.publish import Publisher

from wangge import integrators, quorum_migration, topology
from wangge.config import load_config
from wangge.logs import redact_phones
from wangge.reliable import (
    ATTEMPTS_HEADER, DEAD_LETTER_ID_HEADER, FAILED_AT_HEADER, QUEUE_HEADER, REASON_HEADER, SERVICE_HEADER,
    WANGGE_HEADERS, raw_body, republish_properties,
)

CONFIG_PATH = Path(__file__).with_name("admin.yml")
BODY_PREVIEW_CHARS = 300


def broker_dead_lettering(headers):
    """The broker's own record of why it dead-lettered a message (a quorum queue's
    delivery limit), for messages our handlers never got to settle."""
    deaths = headers.get("x-death") or []
    return deaths[0] if deaths and isinstance(deaths[0], dict) else {}


def broker_dead_letter_id(message, death):
    digest = hashlib.sha256(raw_body(message))
    digest.update(str(death.get("time")).encode())
    return "broker-" + digest.hexdigest()[:16]


def describe_dead_letter(message):
    headers = message.headers or {}
    death = broker_dead_lettering(headers)
    if death.get("reason") == "delivery_limit":
        death_reason = (f"delivered {topology.DELIVERY_LIMIT} times and never settled: a consumer kept stopping "
                        f"while handling it (the queue's delivery limit)")
    else:
        death_reason = death.get("reason")
    body = message.body  # py-amqp hands back str when the message names its encoding
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            body = repr(body)
    return {
        # the broker's dead letters have no id of ours: their message id serves, or
        # (events carry none) a digest of the body and when the broker gave up on it
        "id": headers.get(DEAD_LETTER_ID_HEADER) or message.properties.get("message_id") or broker_dead_letter_id(message, death),
        "message_id": message.properties.get("message_id"),
        "reason": headers.get(REASON_HEADER) or death_reason,
        "queue": headers.get(QUEUE_HEADER) or death.get("queue"),
        "service": headers.get(SERVICE_HEADER),
        "attempts": headers.get(ATTEMPTS_HEADER),
        "failed_at": headers.get(FAILED_AT_HEADER) or (death["time"].isoformat() if hasattr(death.get("time"), "isoformat") else None),
        # a preview only, phone numbers masked: the full body stays in the queue
        "body": redact_phones(body[:BODY_PREVIEW_CHARS]),
    }


def browse(channel, queue_name, limit=None):
    """Yield up to ``limit`` messages without acknowledging them: whatever is not
    acked returns to the queue, in its order, when the channel closes. One message
    at a time is held here, so a queue of any length can be read."""
    queue = topology.dead_letter_queue(queue_name)(channel)
    queue.queue_declare(passive=True)  # a queue that is not there is an error, not an empty list
    taken = 0
    while limit is None or taken < limit:
        message = queue.get(no_ack=False)
        if message is None:
            return
        taken += 1
        yield message


def iter_dead_letters(amqp_uri, queue_name, limit=None):
    """Each dead letter described, as it is read; the queue is left as it was."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            for message in browse(channel, queue_name, limit):
                yield describe_dead_letter(message)
        finally:
            channel.close()


def replay_dead_letters(amqp_uri, queue_name, ids=None):
    """Send dead letters back to the queue they failed in, with a fresh attempt
    count, acknowledging each once the broker has its copy; yields what was
    replayed. Only that one consumer sees them again."""
    publisher = Publisher(amqp_uri)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            for message in browse(channel, queue_name):
                entry = describe_dead_letter(message)
                wanted = ids is None or entry["id"] in ids
                if not wanted or not entry["queue"]:
                    continue
                headers = {k: v for k, v in (message.headers or {}).items() if k not in WANGGE_HEADERS}
                publisher.publish(
                    raw_body(message), exchange="", routing_key=entry["queue"], headers=headers,
                    mandatory=True, **republish_properties(message),
                )
                message.ack()
                yield entry
        finally:
            channel.close()


class NoApiToken(RuntimeError):
    pass


def api_session(token):
    """A session that sends the administrator's bearer token."""
    if not token:
        raise NoApiToken("set WANGGE_API_TOKEN to a county administrator's access token "
                         "(locally: export WANGGE_API_TOKEN=$(wangge-admin token --user county-admin | tail -n 1))")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def refused(response):
    """The lines saying why the API refused a call (its JSON error, naming fields)."""
    try:
        body = response.json()
    except ValueError:
        return [f"HTTP {response.status_code}"]
    lines = [f"HTTP {response.status_code}: {body.get('message')}"]
    return lines + [f"  {key}: {' '.join(map(str, problems))}" for key, problems in (body.get("fields") or {}).items()]


def load_grids(session, routing_url, path):
    """PUT a registry file to routing; returns (exit code, message lines)."""
    try:
        with open(path, encoding="utf-8") as registry_file:
            document = yaml.safe_load(registry_file)  # JSON is YAML too
    except (OSError, yaml.YAMLError) as exc:
        return 1, [f"cannot read {path}: {exc}"]
    response = session.put(f"{routing_url}/api/v1/registry", json=document, timeout=300)
    if response.status_code in (401, 403):
        return 1, refused(response)
    body = response.json()
    if response.status_code == 200:
        counts = ", ".join(f"{n} {kind}" for kind, n in body["counts"].items())
        return 0, [f"registry version {body['version']} loaded: {counts}"]
    lines = [f"{path}: {body.get('message')}"]
    lines += [f"  {key}: {' '.join(map(str, problems))}" for key, problems in (body.get("fields") or {}).items()]
    return (3 if response.status_code == 409 else 1), lines


CORPUS_HEADER = "subclass\tsplit\ttext"


def export_corrections(session, routing_url, since, output):
    """Write the classes dispatchers confirmed or corrected as rows of the classifier's
    corpus (``services/routing/corpus/*.tsv``, split ``train``); returns (exit code, lines)."""
    params, page, written = {"per_page": 500}, 1, 0
    if since:
        params["since"] = since
    output.write(CORPUS_HEADER + "\n")
    while True:
        response = session.get(f"{routing_url}/api/v1/classifier/examples", params={**params, "page": page}, timeout=60)
        if response.status_code != 200:
            return 1, refused(response)
        answer = response.json()
        for example in answer["items"]:
            text = " ".join(example["text"].split())  # a tab or a line break would split the row
            output.write(f"{example['subclass']}\ttrain\t{text}\n")
            written += 1
        if page * answer["per_page"] >= answer["total"]:
            return 0, [f"{written} labelled request(s) exported"]
        page += 1


def setup_rabbitmq(management_url, vhost, passwords, amqp_uri):
    """Users (passwords from the environment), their permissions, and the whole
    topology, idempotently. Returns the users set up."""
    management = integrators.Management.at(management_url, vhost)
    missing = [user for user, _ in topology.users_and_permissions() if not passwords.get(user)]
    if missing:
        raise SystemExit(f"no password for {', '.join(missing)}: set RABBITMQ_<USER>_PASSWORD for each")
    management.call("PUT", f"/vhosts/{management.quoted_vhost}")
    for user, allowed in topology.users_and_permissions():
        management.call("PUT", f"/users/{user}", json={"password": passwords[user], "tags": ""})
        management.call("PUT", f"/permissions/{management.quoted_vhost}/{user}", json=allowed)
    management.call("PUT", f"/topic-permissions/{management.quoted_vhost}/external", json=topology.EXTERNAL_TOPIC_PERMISSIONS)
    with Connection(amqp_uri) as connection:
        topology.declare_topology(connection)
    return [user for user, _ in topology.users_and_permissions()]


def manage_integrators(management, amqp_uri, open311_keys, action, source):
    """``wangge-admin integrators ...``: (exit code, lines for stdout, lines for stderr).
    ``add`` and ``rotate`` print the broker password, then the Open311 API key on the last
    line. ``open311_keys()`` makes the :class:`integrators.Open311Keys` client (``NoApiToken``
    without a token): ``add`` and ``rotate`` need it before they change anything; ``disable``
    and ``list`` do the broker's part whether or not intake's part can be done."""
    try:
        if action == "add":
            keys = open311_keys()
            password = integrators.add(management, amqp_uri, source)
            account = [f"account {integrators.account_name(source)}: publishes to {topology.INBOUND_EXCHANGE_NAME} with routing key "
                       f"request.{source} only, reads {topology.outbound_queue_name(source)} only; its password:", password]
            return 0, account + open311_key_lines(keys, source, "its Open311 API key (/open311/v2/):"), []
        if action == "rotate":
            # an account named under the earlier rule has no source intake accepts, so no key
            keys = open311_keys() if integrators.SOURCE_PATTERN.match(source) else None
            password = integrators.rotate(management, source)
            lines = [f"account {integrators.account_name(source)}: a new password (connections with the old one closed):", password]
            if keys is None:
                return 0, lines, [f"no Open311 API key: intake takes no requests from {source!r}"]
            return 0, lines + open311_key_lines(keys, source, "a new Open311 API key (the old one no longer works):"), []
        if action == "disable":
            # the broker first: cutting the account off must not wait for intake
            closed = integrators.disable(management, source)
            disabled = f"account {integrators.account_name(source)} disabled: no permissions, {closed} connection(s) closed"
            if not integrators.SOURCE_PATTERN.match(source):
                return 0, [f"{disabled}; no Open311 API key"], []
            try:
                revoked = open311_keys().revoke(source)
            except (NoApiToken, integrators.IntegratorError) as exc:
                return 1, [disabled], [f"its Open311 API key is NOT revoked: {exc}"]
            return 0, [f"{disabled}; {'Open311 API key revoked' if revoked else 'no Open311 API key'}"], []
        rows = integrators.accounts(management)
        try:
            holders, problems = open311_keys().holders(), []
        except (NoApiToken, integrators.IntegratorError) as exc:
            holders, problems = None, [f"which systems hold an Open311 API key is not known: {exc}"]
        keys_column = {True: "open311", False: "no open311 key", None: "open311 key unknown"}
        return (1 if problems else 0), [
            f"{source}\t{'enabled' if enabled else 'disabled'}\t{keys_column[None if holders is None else source in holders]}"
            for source, enabled in rows] or ["no integrator accounts"], problems
    except integrators.IntegratorError as exc:
        return 1, [], [str(exc)]


def open311_key_lines(keys, source, about):
    try:
        return [about, keys.issue(source)]
    except integrators.IntegratorError as exc:
        raise integrators.IntegratorError(
            f"{exc}\nthe broker account is ready, the Open311 API key is not: `wangge-admin integrators rotate {source}` "
            "issues both once intake answers") from exc


def print_migration(report):
    for name, moved in report.migrated.items():
        print(f"{name}: now a quorum queue, {moved} message(s) carried over")
    print(f"{len(report.in_place)} queue(s) were quorum queues already")
    if report.busy:
        print(f"not migrated, being consumed (stop the services, then run this again): {', '.join(report.busy)}", file=sys.stderr)
    return 0 if report.complete else 1


def print_local_token(user_id, client_id):
    """The local provider lives in the source checkout's devstack/, which is not installed."""
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "devstack" / "identity.py").exists():
        print("wangge-admin token needs a source checkout (devstack/identity)", file=sys.stderr)
        return 1
    if str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    from devstack.identity import LoginRefused, local_token

    try:
        token, about = local_token(user_id, client_id)
    except LoginRefused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    print(about, file=sys.stderr)
    print(token)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="wangge-admin", description="Wangge operator commands.")
    parser.add_argument("--amqp-uri", help="default: AMQP_URI from wangge/admin.yml (env AMQP_URI)")
    commands = parser.add_subparsers(dest="command", required=True)

    dead = commands.add_parser("dead-letters", help="list or replay a dead-letter queue").add_subparsers(dest="action", required=True)
    listing = dead.add_parser("list", help="show dead letters with their reasons (they stay in the queue)")
    listing.add_argument("queue", help="e.g. wangge.inbound.dead, wangge.intake.dead")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = dead.add_parser("replay", help="send dead letters back to the queue they failed in")
    replay.add_argument("queue")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true")
    which.add_argument("--id", action="append", dest="ids", help="a dead letter's id, as listed")

    topo = commands.add_parser("topology", help="the platform's exchanges and queues").add_subparsers(dest="action", required=True)
    topo.add_parser("declare", help="declare every exchange and queue (idempotent)")
    topo.add_parser("definitions", help="print them as RabbitMQ definitions JSON")
    migrate = topo.add_parser("migrate", help="turn the classic queues of an earlier version into quorum queues, "
                                              "keeping their messages (stop the services first)")
    migrate.add_argument("--integrator", action="append", default=[], dest="integrators", metavar="SOURCE",
                         help="also the results queue of a system added with `integrators add`")

    grids = commands.add_parser("grids", help="the grid registry").add_subparsers(dest="action", required=True)
    grids_load = grids.add_parser("load", help="load a registry file (its version must be newer than the one in force)")
    grids_load.add_argument("file")
    grids_load.add_argument("--routing-url", help="default: ROUTING_URL from wangge/admin.yml")

    classifier = commands.add_parser("classifier", help="routing's request classifier").add_subparsers(dest="action", required=True)
    corrections = classifier.add_parser(
        "corrections", help="the classes dispatchers confirmed or corrected, as corpus rows (TSV) to extend services/routing/corpus/")
    corrections.add_argument("--since", help="only decisions at or after this moment (ISO 8601 with offset)")
    corrections.add_argument("--output", type=Path, help="a file to write (default: standard output)")
    corrections.add_argument("--routing-url", help="default: ROUTING_URL from wangge/admin.yml")

    systems = commands.add_parser("integrators", help="one broker account per system that sends requests").add_subparsers(
        dest="action", required=True)
    for action, about in (("add", "make the account, its permissions, its results queue and its Open311 API key; "
                                  "prints its password, then the key last"),
                          ("rotate", "a new password (connections with the old one are closed) and Open311 API key; the key last"),
                          ("disable", "take its permissions away, close its connections, revoke its Open311 API key")):
        systems.add_parser(action, help=about).add_argument("source", help="e.g. hotline12345")
    systems.add_parser("list", help="every system's account, enabled or disabled, and whether it holds an Open311 API key")

    rabbit = commands.add_parser("rabbitmq", help="the broker").add_subparsers(dest="action", required=True)
    rabbit.add_parser("setup", help="users, permissions and topology (RABBITMQ_MANAGEMENT_URL, RABBITMQ_*_PASSWORD)")

    token = commands.add_parser("token", help="an access token from the local identity provider (make run); the token is the last line")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a demo user: county-admin, w-zc-nanmen-02-1, lead-zhangcheng, dept-power, …")
    who.add_argument("--client", help="client credentials: wangge-services, alertmanager, integrator-hotline12345, …")

    args = parser.parse_args(argv)
    if args.command == "token":
        return print_local_token(args.user, args.client)
    config = load_config(CONFIG_PATH)
    amqp_uri = args.amqp_uri or config["AMQP_URI"]

    if args.command == "integrators":
        management = integrators.Management.at(config["RABBITMQ_MANAGEMENT_URL"], config["RABBITMQ_VHOST"])
        try:
            code, lines, problems = manage_integrators(
                management, amqp_uri, lambda: integrators.Open311Keys(api_session(config["API_TOKEN"]), config["INTAKE_URL"]),
                args.action, getattr(args, "source", None))
        except NoApiToken as exc:
            print(f"wangge-admin: {exc}", file=sys.stderr)
            return 2
        if lines:
            print("\n".join(lines))
        if problems:
            print("\n".join(problems), file=sys.stderr)
        return code
    if args.command == "rabbitmq":
        users = setup_rabbitmq(config["RABBITMQ_MANAGEMENT_URL"], config["RABBITMQ_VHOST"], config["RABBITMQ_PASSWORDS"], amqp_uri)
        print(f"set up users {', '.join(users)}, their permissions and every exchange and queue")
        return 0
    if args.command in ("grids", "classifier"):
        try:
            session = api_session(config["API_TOKEN"])
        except NoApiToken as exc:
            print(f"wangge-admin: {exc}", file=sys.stderr)
            return 2
        routing_url = args.routing_url or config["ROUTING_URL"]
        if args.command == "grids":
            code, lines = load_grids(session, routing_url, args.file)
        elif args.output:
            with open(args.output, "w", encoding="utf-8") as output:
                code, lines = export_corrections(session, routing_url, args.since, output)
        else:
            code, lines = export_corrections(session, routing_url, args.since, sys.stdout)
        print("\n".join(lines), file=sys.stdout if code == 0 and args.command == "grids" else sys.stderr)
        return code

    if args.command == "dead-letters":
        try:
            return dead_letters(args, amqp_uri)
        except amqp.exceptions.NotFound:
            print(f"wangge-admin: no queue {args.queue}", file=sys.stderr)
            return 1
    if args.action == "migrate":
        return print_migration(quorum_migration.migrate(amqp_uri, args.integrators))
    if args.action == "declare":
        with Connection(amqp_uri) as connection:
            topology.declare_topology(connection)
        print("declared every exchange and queue")
    else:
        print(json.dumps(topology.rabbitmq_definitions(), indent=2))
    return 0


def dead_letters(args, amqp_uri):
    if args.action == "replay":
        count = sum(1 for _ in replay_dead_letters(amqp_uri, args.queue, None if args.all else set(args.ids)))
        print(f"replayed {count} message(s) from {args.queue}")
        return 0
    count = 0
    for count, entry in enumerate(iter_dead_letters(amqp_uri, args.queue, args.limit), start=1):
        if args.json:
            print(json.dumps(entry, ensure_ascii=False), flush=True)
        else:
            print(f"{entry['id']}  message_id={entry['message_id']}  attempts={entry['attempts']}  failed_at={entry['failed_at']}  queue={entry['queue']}\n    reason: {entry['reason']}\n    body: {entry['body']}", flush=True)
    if not args.json:
        print(f"{count} dead letter(s) in {args.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
