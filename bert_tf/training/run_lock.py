"""One writing run per --output_dir: ``<output_dir>/.lock``, created exclusively before anything is written.

Every job that writes into an output directory (training, eval-only, predict-only) holds it for
its whole run (``holding_output_dir`` on the job's ``run``); the Trainer takes it again, which is
a no-op inside the same process. Creation is atomic where the filesystem allows it: ``O_EXCL`` on
a local disk; elsewhere (gs://, other TensorFlow filesystems, whose renames are copies) the lock
is written under a temporary name, renamed without overwriting, then read back, so of two runs
racing for it the one whose token is not there stops. A lock whose process is gone (same host,
dead pid) is stale and taken over; ``--overwrite_output_dir`` takes over any lock.
"""
import functools
import json
import os
import socket
import threading
import uuid

import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import UserError

LOCK_NAME = ".lock"

# {lock path: [holds, token, whether output_dir was created for it]} for locks this process holds; nested holds share one lock file.
_HELD = {}
_HELD_GUARD = threading.Lock()


def _is_local(path):
    return "://" not in path


def _create_exclusive(path, payload):
    """Writes ``payload`` to ``path`` unless it exists; False if it did. Atomic on a local disk."""
    if _is_local(path):
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as f:
            f.write(payload)
        return True
    # Not "<path>.partial-...": some filesystems (ram://) take a path with a longer sibling for a directory.
    temporary = os.path.join(os.path.dirname(path), f".partial-{uuid.uuid4().hex}{LOCK_NAME}")
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(payload)
    try:
        tf.io.gfile.rename(temporary, path, overwrite=False)
    except tf.errors.AlreadyExistsError:
        tf.io.gfile.remove(temporary)
        return False
    return True


def _read_holder(path):
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (ValueError, tf.errors.OpError):
        return {}


def _pid_alive(pid):
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(output_dir, overwrite):
    path = os.path.join(output_dir, LOCK_NAME)
    host, token = socket.gethostname(), uuid.uuid4().hex
    payload = json.dumps({"pid": os.getpid(), "host": host, "token": token})
    fileio.ensure_dir(output_dir)
    for _ in range(3):
        if _create_exclusive(path, payload):
            if _read_holder(path).get("token") == token:
                return path, token
            continue  # lost a race on a filesystem without exclusive creation: look at the winner
        holder = _read_holder(path)
        live = holder.get("host") == host and _pid_alive(holder.get("pid"))
        remote_live = holder.get("host") not in (None, host)  # another machine's pid cannot be checked
        if (live or remote_live) and not overwrite:
            where = f"process {holder.get('pid')} on {holder.get('host')}"
            raise UserError(f"{output_dir} is in use by {where}: wait for it, choose another --output_dir, "
                            f"or pass --overwrite_output_dir")
        try:
            tf.io.gfile.remove(path)  # stale (its process is gone) or --overwrite_output_dir
        except tf.errors.NotFoundError:
            pass
    raise UserError(f"{output_dir}: could not take its lock {path} (other runs keep taking it): "
                    "run one job per --output_dir")


class hold:
    """Context manager: holds ``output_dir``'s lock (re-entrant within this process)."""

    def __init__(self, output_dir, overwrite=False):
        self.output_dir, self.overwrite = output_dir, overwrite
        self.path = os.path.join(output_dir, LOCK_NAME)

    def __enter__(self):
        with _HELD_GUARD:
            if self.path in _HELD:
                _HELD[self.path][0] += 1
                return self
            # A run that stops early (a bad flag) leaves no directory it created only to lock.
            created = not tf.io.gfile.isdir(self.output_dir)
            _, token = _acquire(self.output_dir, self.overwrite)
            _HELD[self.path] = [1, token, created]
        return self

    def __exit__(self, *exc):
        with _HELD_GUARD:
            entry = _HELD[self.path]
            entry[0] -= 1
            if entry[0]:
                return False
            del _HELD[self.path]
            if _read_holder(self.path).get("token") == entry[1]:
                try:
                    tf.io.gfile.remove(self.path)
                except tf.errors.NotFoundError:
                    pass
            if entry[2] and tf.io.gfile.isdir(self.output_dir) and not tf.io.gfile.listdir(self.output_dir):
                tf.io.gfile.rmtree(self.output_dir)
        return False


def _chief_task():
    """Whether this process is the chief of a multi-worker TF_CONFIG (or there is none); only the
    chief holds the shared output_dir's lock. Read from TF_CONFIG since jobs lock before building
    their strategy."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task = config.get("task", {})
        cluster = config.get("cluster", {})
    except (ValueError, AttributeError):
        return True  # the strategy layer reports a malformed TF_CONFIG
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and task.get("index") == 0 and not cluster.get("chief")


def holding_output_dir(run):
    """Decorates a job's ``run(flags)``: --output_dir's lock is held from its first write to its end."""
    @functools.wraps(run)
    def locked_run(flags, *args, **kwargs):
        output_dir = getattr(flags, "output_dir", None)
        if not output_dir or not _chief_task():
            return run(flags, *args, **kwargs)  # the job itself reports a missing --output_dir
        with hold(output_dir, getattr(flags, "overwrite_output_dir", False)):
            return run(flags, *args, **kwargs)

    return locked_run
