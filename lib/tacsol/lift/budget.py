"""The lifter's time limit counts CPU seconds of the lifting thread (evmole's analysis included), not wall time:
a dataset build then gives the same TAC on a busy machine as on an idle one. With a wall-clock limit, the reference
corpus lost 168 functions to timeouts when built under a load average of 9 on 2 cores, and none on a quieter run."""
import time

clock = time.thread_time
