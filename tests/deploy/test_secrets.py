"""Secrets hygiene of the deployment (docker-compose.yml and deploy/): no password on a
command line (every process on the host can read another's arguments, and Docker shows
them in `docker ps`/`inspect` and in health check logs), no credentials written into a
URL of the repository, and no secret with a default value.

Each check is a function tried first on known-bad examples, so a check that has gone
blind fails here rather than passing quietly."""
import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.files import read_yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|PASS|SECRET|TOKEN|_KEY)$", re.I)
# ${VAR}, ${VAR:?message}, ${VAR:-default}, $VAR, and compose's escaped $$VAR
VARIABLE = re.compile(r"\$\$?\{?([A-Za-z_][A-Za-z0-9_]*)")
URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@", re.I)
# Tools whose short flag takes a password as its value (-p is a port for most others).
PASSWORD_SHORT_FLAG = {
    "mongosh": "-p", "mongo": "-p", "mongodump": "-p", "mongorestore": "-p", "mongoexport": "-p", "mongoimport": "-p",
    "mysql": "-p", "mysqladmin": "-p", "mariadb": "-p", "redis-cli": "-a", "rabbitmqadmin": "-p",
}
PASSWORD_LONG_FLAGS = ("--password", "--pass", "--passwd", "--pwd", "--secret", "--client-secret", "--token")
CREDENTIAL_FLAGS = {"curl": ("-u", "--user"), "wget": ("--http-password", "--password")}
# Shell builtins: their arguments are not another process's command line.
SHELL_BUILTINS = {":", "printf", "echo", "export", "unset", "set", "umask", "test", "[", "read", "local", "cd", "true", "false"}

# URIs that must carry credentials, because the program reading them takes one URI and
# nothing else (README, "Secrets"); the password is interpolated from .env, never written.
URIS_WITH_CREDENTIALS = {
    "AMQP_URI": "nameko and kombu connect with one AMQP URI",
    "MONGO_URI": "the services' store provider connects with one MongoDB URI",
    "RABBITMQ_MANAGEMENT_URL": "wangge-admin reads the management API's account from its URL",
}


def is_secret_name(name):
    return bool(SECRET_NAME.search(name))


def secret_variables(text):
    return sorted({name for name in VARIABLE.findall(text) if is_secret_name(name)})


def command_line_problems(argv):
    """What in one command line (a list, or a string for a shell) gives a secret away."""
    words = argv if isinstance(argv, list) else shlex.split(argv, comments=True)
    if words and words[0] in ("CMD", "CMD-SHELL"):
        words = words[1:]
    # a shell's script is a command line of its own: check each command in it
    if len(words) >= 3 and words[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and words[1] == "-c":
        return shell_script_problems(words[2])
    if len(words) == 1 and " " in words[0]:
        return shell_script_problems(words[0])
    return _argv_problems(words)


def _argv_problems(words):
    problems = []
    if not words:
        return problems
    program = Path(words[0]).name
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        for name in secret_variables(word):
            problems.append(f"{program}: secret {name} on the command line ({word!r})")
        if URL_WITH_PASSWORD.search(word):
            problems.append(f"{program}: a URL with a password on the command line ({word!r})")
        flag, _, value = word.partition("=")
        if flag in PASSWORD_LONG_FLAGS and (value or (following and not following.startswith("-"))):
            problems.append(f"{program}: {flag} with a value")
        if word == PASSWORD_SHORT_FLAG.get(program) and following and not following.startswith("-"):
            problems.append(f"{program}: {word} with a value")
        if word.startswith(PASSWORD_SHORT_FLAG.get(program) or "\0") and len(word) > 2 and not word.startswith("--"):
            problems.append(f"{program}: {word[:2]} with a value")
        if word in CREDENTIAL_FLAGS.get(program, ()) and ":" in following:
            problems.append(f"{program}: {word} user:password")
    return problems


def shell_script_problems(script):
    """Each simple command of a shell script: builtins may hold a secret (printf into a
    file), other programs may not have one among their arguments."""
    problems = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for command in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                words = command.split()
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                words = words[1:]  # VAR=value before a command: the environment, not argv
            if words and words[0] == "exec":
                words = words[1:]
            if not words or words[0] in SHELL_BUILTINS:
                continue
            problems += _argv_problems(words)
    return problems


def urls_with_credentials(text):
    return [match.group(0) for match in URL_WITH_PASSWORD.finditer(text)]


@pytest.fixture(scope="module")
def compose():
    return read_yaml(COMPOSE)


def command_lines(compose):
    for name, service in compose["services"].items():
        for key in ("command", "entrypoint"):
            if service.get(key):
                yield f"{name}.{key}", service[key]
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            yield f"{name}.healthcheck", test


def deploy_scripts():
    return sorted(path for path in DEPLOY.rglob("*.sh"))


def checked_in_text_files():
    # the Kubernetes manifests write URIs with kubelet's $(VAR) from Secrets: checked by
    # tests/deploy/test_kubernetes.py on the rendered manifests
    files = [COMPOSE, *sorted(path for path in DEPLOY.rglob("*") if path.is_file() and DEPLOY / "k8s" not in path.parents)]
    return [path for path in files if path.suffix in ("", ".yml", ".yaml", ".json", ".conf", ".sh", ".js", ".example")
            or path.name == "env.example"]


# -- the checks see what they must --------------------------------------------------------

@pytest.mark.parametrize("bad", [
    ["mongosh", "--host", "mongo", "-u", "admin", "-p", "${MONGO_ADMIN_PASSWORD}",
     "--authenticationDatabase", "admin", "/deploy/init-replica-set.js"],
    ["mongosh", "-u", "admin", "-pS3cret"],
    ["CMD", "mongosh", "mongodb://admin:S3cret@mongo:27017/admin", "--eval", "1"],
    ["CMD-SHELL", "mongosh -u admin -p $$MONGO_ADMIN_PASSWORD --eval 'db.adminCommand(\"ping\")'"],
    ["CMD", "redis-cli", "-a", "S3cret", "ping"],
    ["sh", "-c", "curl -fsS -u admin:$$RABBITMQ_ADMIN_PASSWORD http://rabbitmq:15672/api/overview"],
    ["wangge-admin", "--password=S3cret"],
    ["rabbitmqadmin", "--username", "admin", "--password", "S3cret", "list", "queues"],
    "keycloak-setup --client-secret ${ALERTMANAGER_CLIENT_SECRET}",
])
def test_the_command_line_check_finds_passwords(bad):
    assert command_line_problems(bad)


@pytest.mark.parametrize("good", [
    ["CMD", "pg_isready", "-U", "keycloak", "-d", "keycloak", "-p", "5432"],
    ["mongosh", "--host", "mongo", "--quiet", "/deploy/init-replica-set.js"],
    ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
    ["start", "--import-realm"],
])
def test_the_command_line_check_lets_ordinary_commands_be(good):
    assert command_line_problems(good) == []


def test_the_script_check_finds_a_password_handed_to_a_program_but_not_to_a_builtin():
    assert shell_script_problems('mongosh -u admin -p "$MONGO_ADMIN_PASSWORD" /deploy/init.js')
    assert shell_script_problems('exec rabbitmqadmin --password="$RABBITMQ_ADMIN_PASSWORD" list users')
    assert shell_script_problems('set -e; curl -u "admin:$RABBITMQ_ADMIN_PASSWORD" http://x/ | head')
    assert shell_script_problems("printf '%s' \"$MONGO_REPLICA_KEY\" > /tmp/replica.key") == []
    assert shell_script_problems(': "${ALERTMANAGER_CLIENT_SECRET:?set it}"') == []


def test_the_url_check_finds_credentials():
    assert urls_with_credentials("AMQP_URI: amqp://intake:S3cret@rabbitmq:5672/")
    assert urls_with_credentials("url: http://admin:${RABBITMQ_ADMIN_PASSWORD}@rabbitmq:15672")
    assert urls_with_credentials("KC_DB_URL: jdbc:postgresql://keycloak-db:5432/keycloak") == []
    assert urls_with_credentials("token_url: http://keycloak:8080/auth/realms/wangge/protocol/openid-connect/token") == []


# -- the deployment itself ----------------------------------------------------------------------

def test_no_secret_is_on_a_command_line_in_compose(compose):
    problems = [f"{where}: {problem}" for where, argv in command_lines(compose) for problem in command_line_problems(argv)]
    assert problems == []


@pytest.mark.parametrize("script", deploy_scripts(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_secret_is_on_a_command_line_in_deploy_scripts(script):
    assert shell_script_problems(script.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", checked_in_text_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_checked_in_url_carries_a_written_password(path):
    """A URL may carry credentials only in compose, only where its reader takes nothing
    else (URIS_WITH_CREDENTIALS), and only as an interpolation from the environment."""
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        for match in URL_WITH_PASSWORD.finditer(line):
            assert path == COMPOSE, f"{path.relative_to(ROOT)}: a URL with credentials: {match.group(0)}"
            key = line.strip().split(":", 1)[0]
            assert key in URIS_WITH_CREDENTIALS, f"{key} carries credentials in its URL: pass them otherwise"
            assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", match.group(1)), f"{key}: a written password ({match.group(0)})"


def environment_items(compose):
    anchor = compose.get("x-wangge-service", {}).get("environment", {})
    yield from (("x-wangge-service", key, value) for key, value in anchor.items())
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        yield from ((name, key, value) for key, value in environment.items())


def test_every_secret_in_compose_comes_from_the_environment_without_a_default(compose):
    for service, key, value in environment_items(compose):
        if not is_secret_name(key):
            continue
        value = str(value)
        assert re.fullmatch(r"\$\{([A-Z0-9_]+)(:\?[^}]*|:-)?\}", value), f"{service}.{key}: {value!r} is not taken from .env"


def test_every_secret_of_env_example_is_empty_there():
    for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert value == "", f"env.example gives {name} a value"
