"""AMQP over TLS: a RabbitMQ node of the test's own (never the machine's shared one) runs
deploy/rabbitmq/tls.conf, with only the port and the certificate paths changed, and
certificates made here; clients connect the way README's "AMQP over TLS" tells
integrators and the services to.

The node runs as the ``rabbitmq`` user with its own name, ports, data, cookie and
configuration, and no plugins."""
import datetime
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kombu import Connection

from tests.support.ports import free_port
from tests.support.private_broker import BrokerUnavailable, run_as, without_private_broker

ROOT = Path(__file__).resolve().parents[2]
TLS_CONF = ROOT / "deploy" / "rabbitmq" / "tls.conf"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 90

pytestmark = pytest.mark.skipif(not (RABBITMQ_BIN / "rabbitmq-server").exists(), reason="RabbitMQ is not installed")


# -- certificates -------------------------------------------------------------------------

def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def broker_user_prefix():
    try:
        return run_as()
    except BrokerUnavailable as exc:
        without_private_broker(exc)


def _private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_certificates(directory):
    """A county CA and the broker's certificate for localhost and rabbitmq, signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Wangge test CA")).issuer_name(_name("Wangge test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(_name("rabbitmq")).issuer_name(ca.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("rabbitmq"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / "ca.pem", "cert": directory / "rabbitmq.pem", "key": directory / "rabbitmq.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(_private_pem(key))
    return paths


# -- a node of our own ------------------------------------------------------------------------

class TlsNode:
    def __init__(self, directory):
        self.directory = directory
        self.node = f"wangge-tls-{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.tls_port, self.dist_port = free_port(), free_port(), free_port()
        self.tls = make_certificates(directory)
        config = TLS_CONF.read_text()
        for production, local in (("listeners.ssl.default = 5671", f"listeners.ssl.default = {self.tls_port}"),
                                  ("/etc/rabbitmq/tls/ca.pem", str(self.tls["ca"])),
                                  ("/etc/rabbitmq/tls/rabbitmq.pem", str(self.tls["cert"])),
                                  ("/etc/rabbitmq/tls/rabbitmq.key", str(self.tls["key"]))):
            assert production in config, production
            config = config.replace(production, local)
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n{config}")
        (directory / "enabled_plugins").write_text("[].\n")
        # the shared node's rabbitmq-env.conf names that node: read ours instead
        (directory / "rabbitmq-env.conf").write_text(
            'ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
        for path in ("home", "mnesia", "log"):
            (directory / path).mkdir()
        cookie = directory / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        if os.geteuid() == 0:
            user = pwd.getpwnam("rabbitmq")
            for path in [directory, *directory.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        self.process = None

    def _command(self, script, *args):
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8",
            "HOME": str(self.directory / "home"), "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"), "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
        }
        return [*broker_user_prefix(), "env", "-i", *(f"{key}={value}" for key, value in env.items()), str(RABBITMQ_BIN / script), *args]

    def trusted_connection(self, host="localhost"):
        return Connection(f"amqps://guest:guest@localhost:{self.tls_port}//", connect_timeout=5,
                          ssl={"ca_certs": str(self.tls["ca"]), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": host})

    def _accepts_tls(self):
        try:
            with self.trusted_connection() as connection:
                connection.connect()
            return True
        except Exception:
            return False

    def start(self):
        with open(self.directory / "server.out", "ab") as log:
            self.process = subprocess.Popen(self._command("rabbitmq-server"), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._accepts_tls():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.directory / "server.out").read_text(errors="replace")
                raise RuntimeError(f"RabbitMQ with tls.conf did not accept TLS connections:\n{log[-3000:]}")
            time.sleep(0.3)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            subprocess.run(self._command("rabbitmqctl", "-n", self.node, "stop"), cwd=self.directory, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the session started for this node only
            self.process.wait()


@pytest.fixture(scope="module")
def node():
    # not pytest's tmp_path: it is private to root, and the node runs as the rabbitmq user
    directory = Path(tempfile.mkdtemp(prefix="wangge-tls-broker-"))
    try:
        broker = TlsNode(directory)
        broker.start()
        yield broker
        broker.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def connects_in_a_fresh_process(uri, env):
    """Whether a client that passes nothing but the URI (as nameko does without AMQP_SSL)
    connects; in its own process, since OpenSSL reads SSL_CERT_FILE there."""
    script = "import sys; from kombu import Connection\nwith Connection(sys.argv[1], connect_timeout=5) as c: c.connect()"
    return subprocess.run([sys.executable, "-c", script, uri], env=env, capture_output=True, timeout=60).returncode == 0


# -- what clients see ---------------------------------------------------------------------------

def test_a_client_trusting_the_ca_exchanges_messages_over_tls(node):
    name = f"tls-check-{uuid.uuid4().hex[:8]}"
    with node.trusted_connection() as connection:
        with connection.SimpleQueue(name, queue_opts={"auto_delete": True}, exchange_opts={"auto_delete": True}) as simple:
            simple.put({"text": "路灯坏了"})
            message = simple.get(timeout=10)
            assert message.payload == {"text": "路灯坏了"}
            message.ack()
        assert connection.transport.client.ssl  # it really was TLS


def test_a_client_checking_the_name_refuses_a_certificate_for_another_host(node):
    with pytest.raises(ssl.SSLCertVerificationError):
        with node.trusted_connection(host="wangge.example.gov.cn") as connection:
            connection.connect()


def test_an_amqps_uri_alone_verifies_the_broker_against_ssl_cert_file(node):
    uri = f"amqps://guest:guest@localhost:{node.tls_port}//"
    env = {key: value for key, value in os.environ.items() if key not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    assert not connects_in_a_fresh_process(uri, env), "a broker signed by an unknown CA was trusted"
    assert connects_in_a_fresh_process(uri, {**env, "SSL_CERT_FILE": str(node.tls["ca"])})


def test_plain_amqp_gets_nowhere_on_the_tls_port(node):
    with pytest.raises(Exception):
        with Connection(f"amqp://guest:guest@127.0.0.1:{node.tls_port}//", connect_timeout=5) as connection:
            connection.connect()
