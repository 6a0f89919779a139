"""Atomic outputs: every file or directory we produce appears complete or not at all.

Writers work on a temporary sibling and rename it into place at the end, so a crash, a kill or
a full disk never leaves a partial file under the final name for a rerun to trust.
Paths go through ``tf.io.gfile`` so ``gs://`` works for TPU users.
"""
import contextlib
import errno
import json
import os
import re
import uuid

import tensorflow as tf

from bert_tf.errors import UserError


def _temp_sibling(path):
    return f"{path}.partial-{uuid.uuid4().hex[:8]}"


def _remove(path):
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; on success it is renamed to ``path``.

    Works for a file or a directory written at the yielded path. On error the temporary output
    is removed and ``path`` is left untouched.
    """
    parent = os.path.dirname(path)
    if parent:
        ensure_dir(parent)
    temp = _temp_sibling(path)
    try:
        yield temp
        if tf.io.gfile.isdir(temp) and tf.io.gfile.exists(path):
            # Directories cannot be replaced by rename; move the old one aside first.
            old = _temp_sibling(path)
            tf.io.gfile.rename(path, old)
            tf.io.gfile.rename(temp, path)
            _remove(old)
        else:
            tf.io.gfile.rename(temp, path, overwrite=True)
    except BaseException:
        _remove(temp)
        raise


_STORAGE_ERRNOS = {errno.ENOSPC: "No space left on device", errno.EFBIG: "File too large",
                   errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied",
                   errno.EDQUOT: "Disk quota exceeded"}


def storage_error_message(error):
    """One line for a failed write (disk full, file-size limit, read-only or unwritable path), else None.

    Scripts print it instead of a traceback: the cause is the machine, not a bug.
    """
    text = str(error)
    reason = _STORAGE_ERRNOS.get(getattr(error, "errno", None))
    if reason is None:
        reason = next((r for r in _STORAGE_ERRNOS.values() if r.lower() in text.lower()), None)
    if reason is None or not isinstance(error, (OSError, tf.errors.OpError)):
        return None
    path = getattr(error, "filename", None)
    if not path:
        match = re.search(r"(?:name = |file |')?(/[^\s,;']+)", text)
        path = match.group(1) if match else "the output"
    return (f"cannot write {path} ({reason}): free disk space, fix the permissions or choose another "
            "--output_dir; checkpoints and files saved before are kept")


def write_text(path, text):
    with atomic_path(path) as temp:
        with tf.io.gfile.GFile(temp, "w") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def ensure_dir(path):
    """Creates ``path`` as a directory, or fails with a clear message if a file is in the way."""
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        raise UserError(f"{path} is a file, not a directory: choose another output directory")
    try:
        tf.io.gfile.makedirs(path)
    except (PermissionError, tf.errors.PermissionDeniedError) as error:
        raise UserError(f"cannot create directory {path} ({error}): choose a writable location") from None


def require_file(path, what, fix="check the path"):
    if not path:
        raise UserError(f"{what} is required: pass it as a flag")
    if not tf.io.gfile.exists(path):
        raise UserError(f"{what} {path} does not exist: {fix}")
    return path


def expand_inputs(patterns, what="--input_file"):
    """Comma-separated globs -> sorted file list; an empty match is an error naming the pattern."""
    files = []
    for pattern in [p.strip() for p in str(patterns).split(",") if p.strip()]:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise UserError(f"{what} {pattern} matches no file: check the path or glob")
        files.extend(matched)
    if not files:
        raise UserError(f"{what} is required: pass one or more files (comma-separated globs)")
    return files
