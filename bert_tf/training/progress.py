"""Labelled progress lines with rate and ETA for long loops (training, evaluation, prediction, conversions).

On a terminal the line is redrawn in place; anywhere else (a log file, a pipe, CI) a plain line
is written every ``interval`` seconds, with no escape codes or carriage returns. The first update
can be marked as warm-up (graph tracing and compilation): it is reported on its own line and left
out of the rate, so the ETA is that of the steady steps.
"""
import sys
import time


def _duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _plural(unit, count):
    if count == 1:
        return unit
    return unit + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")


class Bar:
    """``update(position)`` after each unit of work (a chunk of steps, a batch); ``close()`` at the end."""

    def __init__(self, total, initial=0, unit="it", enabled=True, desc=None, stream=None, interval=None):
        self.total, self.unit, self.enabled = total, unit, enabled
        self.label = desc or unit
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.interval = interval if interval is not None else (0.2 if self.interactive else 10.0)
        self.position = self._start_position = initial
        self._started = self._last_shown = time.time()
        self._postfix = {}
        self._warm = None  # (time, position) once warm-up is over; rates count from there
        self._drawn = 0
        self._shown = (None, None)  # (position, postfix) last written, so close() does not repeat it

    def update(self, position, warmup=False):
        """Moves to ``position``; ``warmup=True`` on the first update reports its time apart from the rate."""
        self.position = position
        now = time.time()
        if warmup and self._warm is None:
            self._warm = (now, position)
            if self.enabled:
                done = position - self._start_position
                self._write_line(f"{self.label}: first {done} {_plural(self.unit, done)} "
                                 f"(tracing and compiling) took {now - self._started:.1f} s")
            self._last_shown = now
            return
        if self.enabled and now - self._last_shown >= self.interval:  # the last position: close()
            self._show(now)

    def set_postfix(self, **values):
        self._postfix = {k: f"{v:.4g}" for k, v in values.items()}

    def rate(self, now=None):
        """Units per second over the steady part (after warm-up); None before any steady unit."""
        now = now or time.time()
        since, base = self._warm or (self._started, self._start_position)
        done = self.position - base
        return done / (now - since) if done > 0 and now > since else None

    def eta(self, now=None):
        rate = self.rate(now)
        if self.total is None or not rate:
            return None
        return max(self.total - self.position, 0) / rate

    def text(self, now=None):
        now = now or time.time()
        parts = [f"{self.label}: {self.position}" + (f"/{self.total}" if self.total is not None else "")
                 + f" {_plural(self.unit, 2)}"]
        if self.total:
            parts[0] += f" ({100 * self.position / self.total:.0f}%)"
        rate = self.rate(now)
        parts.append(f"{rate:.3g} {self.unit}/s" if rate else f"? {self.unit}/s")
        if self.total is not None:
            eta = self.eta(now)
            parts.append(f"ETA {_duration(eta)}" if eta is not None else "ETA ?")
        parts.append(f"elapsed {_duration(now - self._started)}")
        parts += [f"{k}={v}" for k, v in self._postfix.items()]
        return ", ".join(parts)

    def _show(self, now):
        self._last_shown = now
        self._shown = (self.position, dict(self._postfix))
        line = self.text(now)
        if self.interactive:
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
            self.stream.flush()
        else:
            self._write_line(line)

    def _write_line(self, line):
        if self.interactive and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if not self.enabled:
            return
        if self._shown != (self.position, self._postfix) and \
                (self.position != self._start_position or self._postfix):
            self._show(time.time())
        if self.interactive and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
        self.enabled = False
