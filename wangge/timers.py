"""Timers whose interval comes from the service's config file."""
from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """``@configured_timer("ANNOUNCE", "INTERVAL_SECONDS", default=5)`` reads
    ``config["ANNOUNCE"]["INTERVAL_SECONDS"]`` when the service starts."""

    def __init__(self, *config_path, default, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.config_path = config_path

    def setup(self):
        value = self.container.config
        for key in self.config_path:
            value = (value or {}).get(key)
        if value is not None:
            self.interval = float(value)
        super().setup()


configured_timer = ConfiguredTimer.decorator
