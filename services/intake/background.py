"""Work an answer need not wait for.

A request is durable once stored; announcing it (``request_received``, with the
broker's confirm) can take seconds when the broker is writing hard — one filing
was seen to wait 19 s for it — and a resident's form, WeCom's callback (which WeCom
sends again after 5 s) or an integrator's consumer would wait with it. So the
announcement runs beside the answer, in a pool of its own: a full pool makes the
next filing wait for a place (the pressure stays on the sender), and an
announcement that never ends, because the process stopped, is the announce
timer's once its claim runs out, as any that failed.
"""
import eventlet
from eventlet.greenpool import GreenPool
from nameko.extensions import DependencyProvider

# announcements under way at once, per process
POOL_SIZE = 200
# how long a graceful stop lets announcements under way finish
STOP_WAIT_SECONDS = 5


class Background(DependencyProvider):
    def setup(self):
        self.pool = GreenPool(POOL_SIZE)

    def get_dependency(self, worker_ctx):
        return self.pool.spawn_n

    def stop(self):
        with eventlet.Timeout(STOP_WAIT_SECONDS, False):
            self.pool.waitall()
