"""Notify's dependency providers: the message templates, the re-send limit, and
the sender with its channels."""
from kombu.pools import get_limit
from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider

from wangge import topology
from wangge.mongo import connect

from services.notify.announcing import Announcer
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
    closes. The announcer publishes as nameko's dispatcher would, from a producer of
    the same pool, so it takes no more places in it than there are."""

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        store = NotificationStore(self.client[config["MONGO_DATABASE"]])
        exchange = topology.events_exchange(self.container.service_name)
        publisher = Publisher(config["AMQP_URI"], exchange=exchange, declare=[exchange])
        self.announcer = Announcer(store, lambda event_type, event: publisher.publish(event, routing_key=event_type), get_limit())
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
