"""--log_file: everything a script prints to the console, also written to a file as plain lines.

Every script gets the flag through ``bert_tf.cli.run``. The copy is taken where Python writes
(``sys.stdout``/``sys.stderr``: prints, progress bars, absl and Python logging, warnings), so the
console itself behaves as without the flag (a terminal stays a terminal for the progress bar).
Progress bars redraw one line with carriage returns; the file gets each bar's final state as a
line, plus its state every PROGRESS_EVERY_S seconds on long runs, without terminal escape codes.
"""
import contextlib
import functools
import logging
import re
import sys
import threading
import time
import traceback

from absl import flags

from bert_tf import fileio
from bert_tf.errors import UserError

PROGRESS_EVERY_S = 30.0
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def define_flag(fv=flags.FLAGS):
    """Defines --log_file on ``fv`` unless a script already did."""
    if "log_file" not in fv:
        flags.DEFINE_string("log_file", None,
                            "Also write the console output (stdout and stderr; progress bars as plain lines) to "
                            "this file (local or gs://). Messages TensorFlow's C++ runtime writes straight to the "
                            "terminal are not included.", flag_values=fv)


class _Lines:
    """Assembles what the streams write into whole lines and appends them to the open file."""

    def __init__(self, file, flush_every_s):
        self._file = file
        self._flush_every_s, self._flushed = flush_every_s, 0.0
        self._lock = threading.Lock()
        self._partial = {}  # stream name -> text after its last newline
        self._progress_written = {}  # stream name -> time its redrawn line was last written

    def feed(self, stream, text):
        with self._lock:
            pending = self._partial.get(stream, "") + text
            *lines, pending = pending.split("\n")
            for line in lines:
                self._write(_ESCAPES.sub("", line.rstrip("\r").rsplit("\r", 1)[-1]))
                self._progress_written.pop(stream, None)
            if "\r" in pending:
                # A redrawn line: its latest complete state, now and then, for long runs.
                *states, pending = pending.split("\r")
                state = _ESCAPES.sub("", states[-1]).strip()
                now = time.monotonic()
                if state and now - self._progress_written.get(stream, 0.0) >= PROGRESS_EVERY_S:
                    self._write(state)
                    self._progress_written[stream] = now
                pending = "\r" + pending
            self._partial[stream] = pending

    def _write(self, line):
        self._file.write(line.rstrip() + "\n")
        if time.monotonic() - self._flushed >= self._flush_every_s:
            self._file.flush()
            self._flushed = time.monotonic()

    def close(self):
        with self._lock:
            for pending in self._partial.values():
                last = _ESCAPES.sub("", pending.rsplit("\r", 1)[-1]).strip()
                if last:
                    self._write(last)
            self._partial.clear()


class _Tee:
    """A text stream writing to the console stream and to ``_Lines``; all else is the console's."""

    def __init__(self, console, name, lines):
        self._console, self._name, self._lines = console, name, lines

    def write(self, text):
        written = self._console.write(text)
        self._lines.feed(self._name, text)
        return written

    def writelines(self, texts):
        for text in texts:
            self.write(text)

    def __getattr__(self, attribute):
        return getattr(self._console, attribute)


def _fd_of(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _console_handlers(saved):
    """Logging handlers holding the console streams themselves (absl's among them: it keeps the
    stderr of import time), with the index of the stream each writes to (0 stdout, 1 stderr)."""
    handlers = list(logging.root.handlers)
    handlers += [h.python_handler for h in handlers if hasattr(h, "python_handler")]
    found = []
    for handler in handlers:
        stream = getattr(handler, "stream", None)
        if stream is None or not isinstance(handler, logging.StreamHandler):
            continue
        for index, consoles in enumerate(((saved[0], sys.__stdout__), (saved[1], sys.__stderr__))):
            if any(stream is console or (_fd_of(stream) is not None and _fd_of(stream) == _fd_of(console))
                   for console in consoles):
                found.append((handler, index))
                break
    return found


@contextlib.contextmanager
def mirrored_console(path):
    """While active, what goes to sys.stdout/sys.stderr also goes to ``path`` (None: nothing).

    The file is written as the run goes (not atomically): after a crash it holds what the console
    showed up to that point, which is what a log is for. An escaping exception's traceback is
    added to the file; the console gets it from Python as usual.
    """
    if not path:
        yield
        return
    import tensorflow as tf

    parent = path.rstrip("/").rsplit("/", 1)[0] if "/" in path.rstrip("/") else ""
    if parent:
        fileio.ensure_dir(parent)
    if tf.io.gfile.isdir(path):
        raise UserError(f"--log_file {path} is a directory: pass a file name")
    file = tf.io.gfile.GFile(path, "w")
    # A local file shows every line at once; on object stores each flush uploads, so now and then.
    lines = _Lines(file, flush_every_s=0.0 if fileio.is_local(path) else PROGRESS_EVERY_S)
    saved = sys.stdout, sys.stderr
    tees = _Tee(saved[0], "stdout", lines), _Tee(saved[1], "stderr", lines)
    handlers = _console_handlers(saved)
    sys.stdout, sys.stderr = tees
    for handler, index in handlers:
        handler.stream = tees[index]
    try:
        yield
    except SystemExit:
        raise
    except BaseException:
        lines.feed("traceback", traceback.format_exc())
        raise
    finally:
        sys.stdout, sys.stderr = saved
        for handler, index in handlers:
            handler.stream = saved[index]
        lines.close()
        file.close()


def mirroring(main):
    """``main(argv)`` run inside ``mirrored_console(--log_file)``; for ``absl.app.run``."""
    @functools.wraps(main)
    def wrapped(argv):
        with mirrored_console(flags.FLAGS.log_file if "log_file" in flags.FLAGS else None):
            return main(argv)
    return wrapped
