"""Code every Wangge service needs identically: event contracts, config, the
store provider, metrics, logging, and the retry/dead-letter mechanism."""
import warnings

# nameko 2 runs on eventlet, which warns on import that it is in maintenance mode.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
