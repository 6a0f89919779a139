"""A progress bar with rate and ETA for long loops (training steps, conversions, evaluation)."""
import sys

from tqdm.auto import tqdm


class Bar:
    """tqdm, quieter when stderr is not a terminal (CI logs get a line every few seconds)."""

    def __init__(self, total, initial=0, unit="it", enabled=True, desc=None):
        interactive = sys.stderr.isatty()
        self._bar = tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=not enabled,
                         mininterval=0.2 if interactive else 10.0, dynamic_ncols=True, file=sys.stderr)
        self._position = initial

    def update(self, position):
        self._bar.update(position - self._position)
        self._position = position

    def set_postfix(self, **values):
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)

    def close(self):
        self._bar.close()
