"""What a running service is doing, for an operator looking at one that has gone
quiet: ``kill -USR1 <pid>`` logs the stack of every green thread (each consumer,
timer, worker and connection) at WARNING, one record per thread, and the service
goes on (after a pause of a few milliseconds while every object is looked at). The
records carry code locations only, never variables' values."""
import gc
import logging
import signal
import traceback

import greenlet

log = logging.getLogger(__name__)


def green_thread_stacks():
    """``[(name, stack text)]`` of every live green thread but the one running this."""
    current = greenlet.getcurrent()
    stacks = []
    for thread in gc.get_objects():
        try:
            if not isinstance(thread, greenlet.greenlet) or thread is current or thread.gr_frame is None:
                continue
            name = getattr(thread, "__name__", None) or type(thread).__name__
            stacks.append((name, "".join(traceback.format_stack(thread.gr_frame))))
        except Exception:  # noqa: BLE001 - e.g. a weak proxy whose object is gone: not a green thread to show
            continue
    return stacks


def log_green_thread_stacks(*_signal_args):
    # runs inside whatever the process was doing: it must never raise into it
    try:
        stacks = green_thread_stacks()
        for number, (name, stack) in enumerate(stacks, start=1):
            log.warning("green thread stack", extra={"green_thread": f"{number}/{len(stacks)} {name}", "stack": stack})
    except Exception:  # noqa: BLE001
        log.exception("the green threads' stacks could not be read")


def dump_stacks_on(signal_number=signal.SIGUSR1):
    signal.signal(signal_number, log_green_thread_stacks)
