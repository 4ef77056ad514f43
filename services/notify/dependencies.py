"""Notify's dependency providers: the message templates, the re-send limit, and
the sender with its channels."""
from kombu.pools import get_limit
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher

from wangge.mongo import connect

from services.notify.announcing import CONFIRM_TIMEOUT_SECONDS, Announcer
from services.notify.channels import build_channels
from services.notify.resends import ResendLimit
from services.notify.sender import Sender
from services.notify.storage import NotificationStore
from services.notify.templates import Templates

# how long a graceful stop lets the announcements under way finish (the timer of the
# next start publishes any left)
ANNOUNCER_STOP_SECONDS = 5


class MessageTemplates(DependencyProvider):
    def setup(self):
        self.templates = Templates(self.container.config["TIMEZONE"])

    def get_dependency(self, worker_ctx):
        return self.templates


class ResendPolicy(DependencyProvider):
    def setup(self):
        self.limit = ResendLimit.from_config(self.container.config["RESEND"])

    def get_dependency(self, worker_ctx):
        return self.limit


class Sending(DependencyProvider):
    """The sender and its channels, and the announcer of their outcomes, with a store
    client of their own: nameko stops every dependency at once, and the sends in
    flight at a graceful stop must still record their outcomes before this client
    closes. The announcer publishes with nameko's dispatcher for code outside a worker
    (the service's broker settings), from the pool of producers the service's own
    publishes take theirs from, and holds at most half of its places."""

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        store = NotificationStore(self.client[config["MONGO_DATABASE"]])
        dispatch, service_name = event_dispatcher(config, confirm_timeout=CONFIRM_TIMEOUT_SECONDS), self.container.service_name
        # half the producer pool: the timer's dispatch and the handlers' retries and dead letters take theirs from it too
        self.announcer = Announcer(store, lambda event_type, event: dispatch(service_name, event_type, event), max(1, get_limit() // 2))
        self.sender = Sender(store, build_channels(config), config, self.announcer)

    def get_dependency(self, worker_ctx):
        return self.sender

    def stop(self):
        self.sender.drain()
        self.announcer.stop(ANNOUNCER_STOP_SECONDS)
        self.client.close()

    def kill(self):
        # container.kill() skips stop(); sends in flight are left to their claims
        self.client.close()
