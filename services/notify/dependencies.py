"""Notify's dependency providers: the message templates, the re-send limit, and
the sender with its channels."""
from nameko.extensions import DependencyProvider

from wangge.mongo import connect

from services.notify.channels import build_channels
from services.notify.resends import ResendLimit
from services.notify.sender import Sender
from services.notify.storage import NotificationStore
from services.notify.templates import Templates


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
    """The sender and its channels, with a store client of its own: nameko stops
    every dependency at once, and the sends in flight at a graceful stop must
    still record their outcomes before this client closes."""

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        self.sender = Sender(NotificationStore(self.client[config["MONGO_DATABASE"]]), build_channels(config), config)

    def get_dependency(self, worker_ctx):
        return self.sender

    def stop(self):
        self.sender.drain()
        self.client.close()

    def kill(self):
        # container.kill() skips stop(); sends in flight are left to their claims
        self.client.close()
