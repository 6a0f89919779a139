"""What training reports: TensorBoard scalars (logs/train, logs/eval) and output_dir/train_metrics.jsonl."""
import json
import os

import tensorflow as tf

from bert_tf import fileio

METRICS_FILE = "train_metrics.jsonl"
# A one-line warning when the measured rate says the run needs longer than this.
LONG_RUN_HOURS = 24.0


class TrainLog:
    """The chief writes; other workers' calls do nothing (their values are the chief's)."""

    def __init__(self, output_dir, is_chief):
        self.output_dir, self.is_chief = output_dir, is_chief
        self.path = os.path.join(output_dir, METRICS_FILE)
        self._eval_writer = None

    def train_writer(self):
        """A TensorBoard writer for one ``train`` call's training scalars (a no-op writer off the chief)."""
        if not self.is_chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", "train"))

    def write_train(self, writer, values):
        """One row of training values (``step`` among them): TensorBoard's ``train`` run and the jsonl file."""
        if not self.is_chief:
            return
        with writer.as_default(step=values["step"]):
            for name, value in values.items():
                if name != "step":
                    tf.summary.scalar(name, value)
        self._append(values)

    def write_eval(self, results, step):
        """An evaluation's numeric results: TensorBoard's ``eval`` run and the jsonl file (as eval_<name>)."""
        if not self.is_chief:
            return
        values = {f"eval_{k}": float(v) for k, v in results.items()
                  if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._eval_writer is None:
            self._eval_writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", "eval"))
        with self._eval_writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name[len("eval_"):], value)
        self._eval_writer.flush()
        self._append(dict(values, step=step))

    def _append(self, row):
        with tf.io.gfile.GFile(self.path, "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def resume_at(self, step):
        """A resumed run logs again from its checkpoint's step: rows past it go (see ``drop_rows_after``)."""
        if self.is_chief:
            drop_rows_after(self.path, step)


def drop_rows_after(path, step):
    """A resumed run logs again from its checkpoint's step: rows an interrupted run wrote past that step go,
    so the log keeps one row per step however often the run resumes."""
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        lines = f.read().splitlines(keepends=True)

    def before(line):
        try:
            return json.loads(line).get("step", 0) <= step
        except ValueError:
            return False  # a row cut off by the interruption

    kept = [line for line in lines if line.strip() and before(line)]
    if len(kept) != len(lines):
        fileio.write_text(path, "".join(kept))


def long_run_warning(step, num_train_steps, chunk, seconds):
    """(message, parameters it names) when the measured rate puts the rest of the run over LONG_RUN_HOURS, else None."""
    hours = (num_train_steps - step) * seconds / max(chunk, 1) / 3600
    if hours <= LONG_RUN_HOURS:
        return None
    return (f"at the measured {seconds / max(chunk, 1):.3g} s/step the remaining {num_train_steps - step} steps "
            f"take about {hours:.1f} hours: lower num_train_steps, or use a GPU/TPU (strategy) or mixed_precision",
            ("num_train_steps", "strategy", "mixed_precision"))
