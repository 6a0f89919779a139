"""Progress lines: labelled, plain outside a terminal, warm-up timed apart from the steady rate and ETA."""
import io

from bert_tf.training import progress


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_with_the_first_chunk_reported_apart(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "time", clock)
    stream = io.StringIO()
    bar = progress.Bar(100, unit="step", desc="train", stream=stream)
    clock.now += 12.3
    bar.update(1, warmup=True)  # tracing and compiling
    clock.now += 11.0
    bar.update(45)  # 44 steady steps in 11 s: 4 steps/s, 55 left: 13.75 s
    bar.set_postfix(loss=0.69314)
    clock.now += 5.0
    bar.update(65)  # 64 steady steps in 16 s: 4 steps/s, 35 left: 8.75 s (shown at close)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "train: first 1 step (tracing and compiling) took 12.3 s",
        "train: 45/100 steps (45%), 4 step/s, ETA 0:14, elapsed 0:23",
        "train: 65/100 steps (65%), 4 step/s, ETA 0:09, elapsed 0:28, loss=0.6931",
    ]


def test_resumed_run_counts_from_its_first_step_and_an_unknown_total_has_no_eta(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "time", clock)
    stream = io.StringIO()
    bar = progress.Bar(None, initial=0, unit="batch", desc="predict", stream=stream, interval=0)
    clock.now += 2.0
    bar.update(4)
    resumed = progress.Bar(1000, initial=900, unit="step", desc="train", stream=stream)
    clock.now += 3.0
    resumed.update(901, warmup=True)
    clock.now += 9.0
    resumed.update(1000)  # the last line comes from close(), once
    resumed.close()
    assert stream.getvalue().splitlines() == [
        "predict: 4 batches, 2 batch/s, elapsed 0:02",
        "train: first 1 step (tracing and compiling) took 3.0 s",
        "train: 1000/1000 steps (100%), 11 step/s, ETA 0:00, elapsed 0:12",
    ]


def test_terminal_redraws_one_line_and_a_disabled_bar_writes_nothing(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "time", clock)
    terminal = _Terminal()
    bar = progress.Bar(4, unit="batch", desc="eval", stream=terminal)
    for position in range(1, 5):
        clock.now += 1.0
        bar.update(position)
    bar.close()
    text = terminal.getvalue()
    assert text.endswith("\reval: 4/4 batches (100%), 1 batch/s, ETA 0:00, elapsed 0:04\n")
    assert text.count("\n") == 1 and "\x1b" not in text
    quiet = io.StringIO()
    silent = progress.Bar(4, stream=quiet, enabled=False)
    silent.update(1, warmup=True)
    silent.update(4)
    silent.close()
    assert quiet.getvalue() == ""
