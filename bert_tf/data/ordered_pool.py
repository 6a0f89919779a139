"""Forked worker processes that share read-only state and hand back results in input order."""
import collections
import multiprocessing

# What forked workers need (a corpus, settings, ...), published before forking.
STATE = {}


def can_fork():
    return "fork" in multiprocessing.get_all_start_methods()


def ordered_map(function, arguments, num_workers, state):
    """``function(*args)`` for each args in forked workers, yielded in order, few tasks in flight.

    ``state`` is published in ``STATE`` before forking so workers share it copy-on-write. The
    bounded window keeps memory at a few tasks' results whatever the input size.
    """
    STATE.clear()
    STATE.update(state)
    context = multiprocessing.get_context("fork")
    window = collections.deque()
    try:
        with context.Pool(num_workers) as pool:
            for args in arguments:
                window.append(pool.apply_async(function, args))
                if len(window) >= 4 * num_workers:
                    yield window.popleft().get()
            while window:
                yield window.popleft().get()
    finally:
        STATE.clear()
