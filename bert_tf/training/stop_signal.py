"""SIGTERM during training: noticed at once, acted on at the end of the running chunk of steps."""
import os
import signal
import threading


class SigtermWatch:
    """Calls ``on_sigterm(signum)`` as soon as SIGTERM arrives, even inside a compiled chunk of steps.

    Python runs signal handlers only between bytecodes of the main thread, which a chunk of
    ``steps_per_execution`` steps can hold for minutes. The interpreter's C-level handler also
    writes the signal number to a wakeup fd at once; a thread reading it reports the stop
    immediately, and the loop saves and exits at the chunk boundary. ``on_sigterm`` may thus be
    called twice for one signal (thread and handler).
    """

    def __init__(self, on_sigterm):
        self.on_sigterm = on_sigterm
        self._previous_handler = self._previous_fd = self._thread = None

    def start(self):
        self._previous_handler = signal.signal(signal.SIGTERM, self.on_sigterm)
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="sigterm-watch", daemon=True)
        self._thread.start()

    def _watch(self):
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data or b"\xff" in data:
                return
            if signal.SIGTERM in data:
                self.on_sigterm(signal.SIGTERM)

    def stop(self):
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGTERM, self._previous_handler)
        os.write(self._write_fd, b"\xff")  # wakes the reader so it ends
        self._thread.join(timeout=5)
        os.close(self._write_fd)
        os.close(self._read_fd)
