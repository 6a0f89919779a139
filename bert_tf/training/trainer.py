"""The one training loop, for pretraining and every fine-tuning task.

It owns what every task shares: strategy scope, mixed precision (precision.py), the compiled
step (steps.py: loss averaging over the global batch, gradient all-reduce then global-norm
clipping, several steps per ``tf.function`` call), checkpoints with resume and best-model
tracking (checkpointing.py: weights, optimizer, step and data position), SIGTERM-safe stops
(stop_signal.py), NaN checks, TensorBoard and ``train_metrics.jsonl`` logs (train_log.py),
evaluation hooks with early stopping, and batched prediction (prediction.py).

A model plugs in with ``per_example_loss(features, outputs)``, ``train_metrics(features,
outputs) -> {name: (values, weights)}`` and a ``train_metric_names`` tuple.
"""
import contextlib
import math
import sys
import threading
import time

import tensorflow as tf
import tf_keras

from bert_tf import distribute, fileio
from bert_tf.data import records
from bert_tf.data.record_integrity import corruption_error
from bert_tf.errors import ParameterError, UserError, in_flag_terms, warn
from bert_tf.training import precision, progress, run_lock
from bert_tf.training.checkpointing import BestModel, RunCheckpoints
from bert_tf.training.prediction import BatchPredictor
from bert_tf.training.settings import LoopSettings, TrainerSettings
from bert_tf.training.steps import TrainSteps
from bert_tf.training.stop_signal import SigtermWatch
from bert_tf.training.train_log import TrainLog, long_run_warning
from bert_tf.training.train_log import drop_rows_after as _drop_rows_after  # noqa: F401  (read here by tests)


@contextlib.contextmanager
def generator_dropout():
    """Dropout layers constructed inside draw from tf.random.Generator states, variables the checkpoint
    keeps (checkpointing.dropout_generators), so a resumed run draws the masks the uninterrupted run
    would have; Keras' default (TF1 stateful ops) keeps its position inside the op, lost with the
    process. Keras reads the choice from a process-wide switch when a layer is constructed (HF's
    layers take no per-layer choice), so it is switched on for the construction only and then
    restored: models built elsewhere in the process keep Keras' default. Not thread-safe: two
    threads building models at once could see each other's switch.
    """
    experimental = tf_keras.backend.experimental
    was_enabled = experimental.is_tf_random_generator_enabled()
    experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        if not was_enabled:
            experimental.disable_tf_random_generator()


class Trainer:
    def __init__(self, strategy, model_fn, optimizer_fn, output_dir, settings, flag_names=None, **fields):
        """``model_fn()`` returns the built task model; ``optimizer_fn()`` the optimizer. Both run in scope.

        ``settings`` is a TrainerSettings, or the global batch size with TrainerSettings' other
        fields as keywords. ``flag_names`` ({parameter: flag}, possibly empty) is for scripts: the
        trainer's errors and warnings then name flags (``--log_steps``) instead of parameters.
        """
        self._flag_names = flag_names
        with self._in_callers_terms():
            if not isinstance(settings, TrainerSettings):
                settings = TrainerSettings(settings, **fields)
            distribute.check_jit_compile(strategy, settings.jit_compile)
            distribute.per_replica_batch_size(strategy, settings.global_batch_size)
            precision.set_precision(settings.mixed_precision)
            self.settings, self.strategy, self.output_dir = settings, strategy, output_dir
            self.is_chief = distribute.is_chief(strategy)
            with strategy.scope():
                with generator_dropout():
                    self.model = model_fn()
                self.optimizer = precision.wrap_optimizer(optimizer_fn(), settings.mixed_precision)
                self.optimizer.build(self.model.trainable_variables)
                self._steps = TrainSteps(strategy, self.model, self.optimizer, settings)
        self._train_steps = None
        self._predictor = BatchPredictor(strategy, self.model, settings.jit_compile)
        self._log = TrainLog(output_dir, self.is_chief)
        self._stop_signal = None
        self._evaluating = False  # inside train()'s evaluation hook: predict() labels its progress "eval"
        self._stop_lock = threading.RLock()  # the watch thread and the Python handler may both report

    @property
    def global_step(self):
        return int(self.optimizer.iterations.numpy())

    @contextlib.contextmanager
    def _in_callers_terms(self):
        """A ParameterError leaves in the caller's terms: flags for a script that gave ``flag_names``."""
        try:
            yield
        except ParameterError as error:
            if self._flag_names is None:
                raise
            raise error.as_flags(self._flag_names) from None

    def _warn(self, message, parameters):
        warn(message if self._flag_names is None else in_flag_terms(message, parameters, self._flag_names))

    # ---- the host loop -----------------------------------------------------------------------
    def train(self, dataset_fn, num_train_steps, eval_fn=None, eval_steps=None, metric_for_best_model=None,
              greater_is_better=True, early_stopping_patience=None, overwrite_output_dir=False, verbose=True):
        """Trains to ``num_train_steps`` (resuming from the latest checkpoint), returns a summary dict.

        ``dataset_fn(input_context)`` returns the per-replica batched training dataset.
        ``eval_fn(model) -> {metric: value}`` runs every ``eval_steps`` and at the end. The other
        arguments are LoopSettings'.
        """
        with self._in_callers_terms():
            loop = LoopSettings(num_train_steps, eval_steps, metric_for_best_model, greater_is_better,
                                early_stopping_patience, verbose)
            fileio.ensure_dir(self.output_dir)
            # Workers of one multi-worker run share output_dir; the chief alone holds its lock.
            lock = run_lock.hold(self.output_dir, overwrite_output_dir) if self.is_chief else contextlib.nullcontext()
            with lock:
                return self._train(dataset_fn, eval_fn, loop)

    def _placed(self, dataset_fn, start_step, positions):
        """``dataset_fn`` started where a run resumed at ``start_step`` stopped; each pipeline's
        InputPosition is added to ``positions`` (they note the files read and skipped)."""
        # The data position is a function of the step: make_dataset starts its pipeline there by
        # arithmetic (distributed iterators cannot be checkpointed on every strategy, and each worker
        # would need its own state). A pipeline that cannot place itself is replayed instead.
        consumed = start_step * self.settings.gradient_accumulation_steps

        def resumed_dataset_fn(context):
            position = records.InputPosition(context, consumed)
            positions.append(position)
            dataset = dataset_fn(position)
            return dataset.skip(position.local_batches) if consumed and not position.placed else dataset

        return resumed_dataset_fn

    def _train(self, dataset_fn, eval_fn, loop):
        settings = self.settings
        checkpoints = RunCheckpoints(self.output_dir, self.model, self.optimizer, settings.max_checkpoints,
                                     self.is_chief, None if self.is_chief else self.strategy.cluster_resolver.task_id)
        start_step = self.global_step
        self._log.resume_at(start_step)
        positions = []
        iterator = iter(distribute.distribute_dataset(self.strategy, self._placed(dataset_fn, start_step, positions)))
        if self._train_steps is None:
            self._train_steps = self._steps.build()
        writer = self._log.train_writer()
        best = BestModel(self.output_dir, self.model, loop.metric_for_best_model, loop.greater_is_better,
                         self.is_chief)
        history, eval_history = [], []
        bar = progress.Bar(loop.num_train_steps, initial=start_step, unit="step", desc="train", enabled=loop.verbose)
        step, log_started, log_step = start_step, time.time(), start_step
        self._stop_signal, self._stopping_at = None, step
        watch = SigtermWatch(self._on_sigterm)
        watch.start()
        stopped_early = False
        rate_checked = False
        train_seconds = 0.0  # time inside training steps only (tracing included; eval and saving not)
        try:
            while step < loop.num_train_steps:
                boundaries = [loop.num_train_steps, _next_multiple(step, settings.save_checkpoints_steps),
                              _next_multiple(step, settings.log_steps)]
                if eval_fn and loop.eval_steps:
                    boundaries.append(_next_multiple(step, loop.eval_steps))
                chunk = min(settings.steps_per_execution, min(boundaries) - step)
                if step == start_step:
                    # The first call traces (and compiles) the step: one step alone, timed apart, so
                    # the rate and ETA shown afterwards are those of the steady chunks.
                    chunk = 1
                self._stopping_at = step + chunk
                chunk_started = time.time()
                try:
                    self._train_steps(iterator, tf.constant(chunk, tf.int32))
                    train_seconds += time.time() - chunk_started
                except tf.errors.DataLossError as error:
                    raise corruption_error(error, set().union(*(p.files for p in positions))) from None
                step += chunk
                self._stopping_at = step
                bar.update(step, warmup=step == start_step + 1)
                # Before logging or saving: a non-finite state must never overwrite a good checkpoint.
                self._check_numerics(step, chunk, checkpoints.latest)
                if not rate_checked and step > start_step + 1:  # the first call traced and compiled
                    rate_checked = True
                    warning = long_run_warning(step, loop.num_train_steps, chunk, time.time() - chunk_started)
                    if warning and self.is_chief:
                        self._warn(*warning)
                if step % settings.log_steps == 0 or step == loop.num_train_steps:
                    values = self._log_train(step, writer, log_started, step - log_step)
                    bar.set_postfix(loss=values["loss"])
                    history.append(values)
                    log_started, log_step = time.time(), step
                saved = step % settings.save_checkpoints_steps == 0 or step == loop.num_train_steps
                if saved:
                    checkpoints.save(step)
                if self._stop_signal is not None:
                    if not saved:
                        checkpoints.save(step)
                    raise UserError(f"stopped by signal {self._stop_signal} at step {step}; checkpoint saved in "
                                    f"{checkpoints.directory}: rerun the same command to resume")
                if eval_fn and ((loop.eval_steps and step % loop.eval_steps == 0) or step == loop.num_train_steps):
                    self._evaluating = True
                    try:
                        results = dict(eval_fn(self.model), step=step)
                    finally:
                        self._evaluating = False
                    eval_history.append(results)
                    self._log.write_eval(results, step)
                    if best.update(results, step) is False and loop.early_stopping_patience and \
                            best.evals_since_best >= loop.early_stopping_patience:
                        stopped_early = True
                        if step != log_step:  # the training metrics since the last log line are kept too
                            history.append(self._log_train(step, writer, log_started, step - log_step))
                        break
        finally:
            bar.close()
            watch.stop()
        if stopped_early:
            checkpoints.save(step)
        skipped = {}
        for position in positions:
            skipped.update(position.skipped_corrupt)
        return {"global_step": step, "train_history": history, "eval_history": eval_history,
                "best": best.summary(), "stopped_early": stopped_early, "train_seconds": train_seconds,
                "skipped_batches": int(self._steps.skipped_batches.numpy()), "corrupt_files_skipped": skipped}

    def _check_numerics(self, step, chunk, latest_checkpoint):
        steps = f"step {step}" if chunk == 1 else f"steps {step - chunk + 1}-{step}"
        kept = f"the last good checkpoint {latest_checkpoint} is kept" if latest_checkpoint \
            else "no checkpoint was saved yet"
        if self.settings.nan_policy == "stop":
            loss = float(self._steps.metrics["loss"].result().numpy())
            if not math.isfinite(loss):
                raise ParameterError(f"loss became {loss} at {steps} (nan_policy=stop): {kept}; lower learning_rate, "
                                     "check the data, or pass nan_policy=skip_batch", "nan_policy", "learning_rate")
        if self.settings.mixed_precision == "fp16":
            # Dynamic loss scaling halves the scale on every overflowing (skipped) step and stops at
            # 1; there, small gradients underflow fp16 and overflowing steps keep being skipped.
            scale = float(self.optimizer.loss_scale.numpy())
            if scale <= 1.0:
                raise ParameterError(f"fp16 loss scale fell to its floor of {scale:g} at {steps}: steps kept "
                                     f"overflowing and were skipped, small gradients underflow; {kept}; use "
                                     "mixed_precision=bf16 or no, or lower learning_rate", "mixed_precision",
                                     "learning_rate")

    def _on_sigterm(self, signum, frame=None):
        """Asks the loop to stop at the end of the running chunk; says so once, at once."""
        with self._stop_lock:
            if self._stop_signal is not None:
                return
            self._stop_signal = signum
            print(f"SIGTERM received: stopping after step {self._stopping_at}, saving checkpoint", file=sys.stderr,
                  flush=True)

    def _log_train(self, step, writer, started, steps_done):
        """The running training metrics (then reset), the rate and the learning rate, logged at ``step``."""
        metrics = self._steps.metrics
        values = {name: float(m.result().numpy()) for name, m in metrics.items()}
        for metric in metrics.values():
            metric.reset_state()
        lr = self.optimizer.learning_rate
        # Under a mirrored strategy the current rate is a MirroredVariable, which float() refuses.
        lr = float(lr(step)) if callable(lr) else float(tf.convert_to_tensor(lr).numpy())
        elapsed = max(time.time() - started, 1e-9)
        settings = self.settings
        values.update(step=step, learning_rate=lr,
                      examples_per_second=steps_done * settings.global_batch_size
                      * settings.gradient_accumulation_steps / elapsed)
        if settings.nan_policy == "skip_batch":
            values["skipped_batches"] = int(self._steps.skipped_batches.numpy())
        if settings.mixed_precision == "fp16":
            values["loss_scale"] = float(self.optimizer.loss_scale.numpy())
        self._log.write_train(writer, values)
        return values

    def restore_best(self):
        BestModel.restore(self.output_dir, self.model)

    # ---- inference ---------------------------------------------------------------------------
    def predict(self, dataset_fn, keep_features=(), verbose=False, total_batches=None, label=None):
        """Runs the model over a finite dataset; returns numpy outputs (plus ``keep_features``) in order.

        ``label`` names the progress line: by default "eval" inside training's evaluation hook,
        "predict" elsewhere.
        """
        label = label or ("eval" if self._evaluating else "predict")
        return self._predictor.predict(dataset_fn, keep_features, verbose, total_batches, label)


def _next_multiple(step, every):
    return (step // every + 1) * every
