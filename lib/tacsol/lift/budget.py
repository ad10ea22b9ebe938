"""The lifter's time limit counts CPU seconds of the lifting thread (evmole's analysis included), not wall time:
a dataset build then gives the same TAC on a busy machine as on an idle one. With a wall-clock limit, the reference
corpus lost 168 functions to timeouts when built under a load average of 9 on 2 cores, and none on a quieter run.

The thread's CPU clock is a system call (0.6 us on an idle 2-vCPU VM, 5 us on the same VM under a load average of
6; a wall-clock read is 0.07 us) and the lifter's loops check their deadline tens of thousands of times per
contract (67k times on the production contracts of tools/bench_production.py: ~2% of a level-2 lift idle, more
under load), so `clock` reads it again only once REFRESH_S of wall time has passed since the last read in this
thread: CPU time cannot advance faster than wall time, so the value it returns is at most REFRESH_S behind and a
deadline is never missed by more. Deadlines are reached when `clock() >= deadline`: a time limit of 0 is spent
before any work, however fast the work would be (with `>`, the cached value let up to REFRESH_S of it run)."""
import threading
import time

REFRESH_S = 0.002
_local = threading.local()


def clock() -> float:
    """This thread's CPU seconds, read from the system at most every REFRESH_S of wall time."""
    now = time.perf_counter()
    if now - getattr(_local, "wall", -1.0) >= REFRESH_S:
        _local.wall, _local.cpu = now, time.thread_time()
    return _local.cpu
