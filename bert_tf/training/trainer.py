"""The one training loop, for pretraining and every fine-tuning task.

It owns what every task shares: strategy scope, mixed precision, loss averaging over the global
batch, gradient all-reduce then global-norm clipping, several steps per ``tf.function`` call,
checkpoints with resume (weights, optimizer, step and data position), SIGTERM-safe stops,
NaN checks, TensorBoard and ``train_metrics.jsonl`` logs, evaluation hooks with early stopping
and best-model tracking, and batched prediction.

A model plugs in with ``per_example_loss(features, outputs)``, ``train_metrics(features,
outputs) -> {name: (values, weights)}`` and a ``train_metric_names`` tuple.
"""
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import tensorflow as tf
import tf_keras

from bert_tf import distribute, fileio
from bert_tf.data import records
from bert_tf.errors import UserError, warn
from bert_tf.training import progress, run_lock

PRECISION_POLICIES = {"no": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}


def set_precision(mixed_precision):
    if mixed_precision not in PRECISION_POLICIES:
        raise UserError(f"--mixed_precision={mixed_precision} is unknown: use no, fp16 or bf16")
    tf_keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])


class Trainer:
    def __init__(self, strategy, model_fn, optimizer_fn, output_dir, global_batch_size, mixed_precision="no",
                 jit_compile=False, steps_per_execution=1, save_checkpoints_steps=1000, log_steps=100,
                 max_checkpoints=3, clip_norm=1.0, nan_policy="stop", gradient_accumulation_steps=1):
        """``model_fn()`` returns the built task model; ``optimizer_fn()`` the optimizer. Both run in scope.

        With ``gradient_accumulation_steps`` k > 1 each optimizer step sums the all-reduced gradients
        of k batches of ``global_batch_size`` and applies their mean once: the update of one batch k
        times larger, in the memory of one batch.
        """
        if gradient_accumulation_steps < 1:
            raise UserError(f"--gradient_accumulation_steps={gradient_accumulation_steps} must be at least 1")
        self.gradient_accumulation_steps = gradient_accumulation_steps
        for flag, value in (("--save_checkpoints_steps", save_checkpoints_steps), ("--log_steps", log_steps),
                            ("--steps_per_execution", steps_per_execution)):
            if value <= 0:
                raise UserError(f"{flag}={value} must be positive")
        if clip_norm < 0:
            raise UserError(f"--clip_norm={clip_norm} must be at least 0 (0 turns clipping off)")
        if nan_policy not in ("stop", "skip_batch"):
            raise UserError(f"--nan_policy={nan_policy} is unknown: use stop or skip_batch")
        distribute.check_jit_compile(strategy, jit_compile)
        self.strategy = strategy
        self.output_dir = output_dir
        self.global_batch_size = global_batch_size
        distribute.per_replica_batch_size(strategy, global_batch_size)
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.steps_per_execution = steps_per_execution
        self.save_checkpoints_steps = save_checkpoints_steps
        self.log_steps = log_steps
        self.clip_norm = clip_norm
        self.max_checkpoints = max_checkpoints
        self.nan_policy = nan_policy
        self.is_chief = distribute.is_chief(strategy)
        set_precision(mixed_precision)
        # Dropout then draws from tf.random.Generator states, variables the checkpoint keeps (see
        # _dropout_generators), so a resumed run draws the masks the uninterrupted run would have;
        # Keras' default (TF1 stateful ops) keeps its position inside the op, lost with the process.
        tf_keras.backend.experimental.enable_tf_random_generator()
        with strategy.scope():
            self.model = model_fn()
            optimizer = optimizer_fn()
            if mixed_precision == "fp16":
                optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.model.trainable_variables)
            names = ("loss",) + tuple(getattr(self.model, "train_metric_names", ()))
            self.metrics = {name: tf_keras.metrics.Mean(name=name) for name in names}
            self.skipped_batches = tf.Variable(0, dtype=tf.int64, trainable=False,
                                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self._accumulated = None
            if gradient_accumulation_steps > 1:
                # Gradients are all-reduced before accumulating, so every replica holds the same sum.
                first = tf.VariableAggregation.ONLY_FIRST_REPLICA
                self._accumulated = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False, aggregation=first)
                                     for v in self.model.trainable_variables]
                self._accumulated_loss = tf.Variable(0.0, trainable=False, aggregation=first)
        self._train_steps = None
        self._predict_fns = {}
        self._stop_signal = None
        self._evaluating = False  # inside train()'s evaluation hook: predict() labels its progress "eval"
        self._stop_lock = threading.RLock()  # the watch thread and the Python handler may both report

    @property
    def global_step(self):
        return int(self.optimizer.iterations.numpy())

    # ---- the compiled step -------------------------------------------------------------------
    def _forward_backward(self, features):
        """(outputs, per-example losses, loss, gradients summed over all replicas) for this replica's batch."""
        model, optimizer = self.model, self.optimizer
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example = tf.cast(model.per_example_loss(features, outputs), tf.float32)
            loss = tf.reduce_sum(per_example) / self.global_batch_size
            scaled = optimizer.get_scaled_loss(loss) if self.mixed_precision == "fp16" else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if self.mixed_precision == "fp16":
            grads = optimizer.get_unscaled_gradients(grads)
        # All-reduce before clipping: the clip must see the global gradient, as one device would.
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        # Embedding gradients arrive as IndexedSlices with one row per lookup; the global norm of
        # those rows is not the norm of the gradient (repeated ids are not summed) and depends on
        # how the batch was split over replicas. Summing them first makes the clip exact.
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return outputs, per_example, loss, grads

    def _apply(self, grads, finite):
        """Clips and applies; under nan_policy=skip_batch a non-finite ``finite`` skips and counts the update."""
        optimizer, variables = self.optimizer, self.model.trainable_variables
        if self.clip_norm:  # 0: off, the plain Keras recipe's choice
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
        if self.nan_policy != "skip_batch":
            optimizer.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)
            return

        def apply():
            optimizer.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)
            return tf.constant(0, tf.int64)

        self.skipped_batches.assign_add(tf.cond(finite, apply, lambda: tf.constant(1, tf.int64)))

    def _update_metrics(self, features, outputs, per_example):
        if self.nan_policy == "skip_batch":
            # Skipped batches are counted, not averaged into the logged loss.
            finite_examples = tf.math.is_finite(per_example)
            self.metrics["loss"].update_state(tf.where(finite_examples, per_example, 0.0),
                                              sample_weight=tf.cast(finite_examples, tf.float32))
        else:
            self.metrics["loss"].update_state(per_example)
        for name, (values, weights) in self.model.train_metrics(features, outputs).items():
            self.metrics[name].update_state(values, sample_weight=weights)

    def _replica_step(self, features):
        outputs, per_example, loss, grads = self._forward_backward(features)
        finite = None
        if self.nan_policy == "skip_batch":
            # Every replica must take the same decision: skip if the loss is bad on any of them.
            bad_replicas = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(tf.math.is_finite(loss)), tf.float32))
            finite = bad_replicas == 0
        self._apply(grads, finite)
        self._update_metrics(features, outputs, per_example)

    def _replica_accumulate(self, features):
        """One micro-batch of gradient accumulation: forward, backward, all-reduce, add."""
        outputs, per_example, loss, grads = self._forward_backward(features)
        for accumulator, grad in zip(self._accumulated, grads):
            accumulator.assign_add(tf.cast(grad, tf.float32))
        self._accumulated_loss.assign_add(loss)
        self._update_metrics(features, outputs, per_example)

    def _replica_apply_accumulated(self):
        """Clips and applies the mean of the accumulated gradients, then clears them."""
        variables = self.model.trainable_variables
        k = float(self.gradient_accumulation_steps)
        grads = [tf.cast(a / k, v.dtype) for a, v in zip(self._accumulated, variables)]
        self._apply(grads, tf.math.is_finite(self._accumulated_loss))
        for accumulator in self._accumulated:
            accumulator.assign(tf.zeros_like(accumulator))
        self._accumulated_loss.assign(0.0)

    def _build_train_steps(self):
        if self.gradient_accumulation_steps > 1:
            return self._build_accumulating_steps()
        replica_step = tf.function(self._replica_step, jit_compile=self.jit_compile or None)

        @tf.function
        def train_steps(iterator, steps):
            for _ in tf.range(steps):
                self.strategy.run(replica_step, args=(next(iterator),))

        return train_steps

    def _build_accumulating_steps(self):
        accumulate = tf.function(self._replica_accumulate, jit_compile=self.jit_compile or None)
        apply = tf.function(self._replica_apply_accumulated, jit_compile=self.jit_compile or None)
        k = self.gradient_accumulation_steps

        @tf.function
        def train_steps(iterator, steps):
            for _ in tf.range(steps):
                for _ in tf.range(k):
                    self.strategy.run(accumulate, args=(next(iterator),))
                self.strategy.run(apply)

        return train_steps

    # ---- the host loop -----------------------------------------------------------------------
    def _check_numerics(self, step, chunk, latest_checkpoint):
        steps = f"step {step}" if chunk == 1 else f"steps {step - chunk + 1}-{step}"
        kept = f"the last good checkpoint {latest_checkpoint} is kept" if latest_checkpoint \
            else "no checkpoint was saved yet"
        if self.nan_policy == "stop":
            loss = float(self.metrics["loss"].result().numpy())
            if not math.isfinite(loss):
                raise UserError(f"loss became {loss} at {steps} (--nan_policy=stop): {kept}; lower --learning_rate, "
                                "check the data, or pass --nan_policy=skip_batch")
        if self.mixed_precision == "fp16":
            # Dynamic loss scaling halves the scale on every overflowing (skipped) step and stops at
            # 1; there, small gradients underflow fp16 and overflowing steps keep being skipped.
            scale = float(self.optimizer.loss_scale.numpy())
            if scale <= 1.0:
                raise UserError(f"fp16 loss scale fell to its floor of {scale:g} at {steps}: steps kept overflowing "
                                f"and were skipped, small gradients underflow; {kept}; use --mixed_precision=bf16 "
                                "or no, or lower --learning_rate")

    def _on_sigterm(self, signum, frame=None):
        """Asks the loop to stop at the end of the running chunk; says so once, at once."""
        with self._stop_lock:
            if self._stop_signal is not None:
                return
            self._stop_signal = signum
            print(f"SIGTERM received: stopping after step {self._stopping_at}, saving checkpoint", file=sys.stderr,
                  flush=True)

    def _log(self, step, writer, started, steps_done):
        values = {name: float(m.result().numpy()) for name, m in self.metrics.items()}
        for metric in self.metrics.values():
            metric.reset_state()
        lr = self.optimizer.learning_rate
        # Under a mirrored strategy the current rate is a MirroredVariable, which float() refuses.
        lr = float(lr(step)) if callable(lr) else float(tf.convert_to_tensor(lr).numpy())
        elapsed = max(time.time() - started, 1e-9)
        values.update(step=step, learning_rate=lr,
                      examples_per_second=steps_done * self.global_batch_size * self.gradient_accumulation_steps
                      / elapsed)
        if self.nan_policy == "skip_batch":
            values["skipped_batches"] = int(self.skipped_batches.numpy())
        if self.mixed_precision == "fp16":
            values["loss_scale"] = float(self.optimizer.loss_scale.numpy())
        if self.is_chief:
            with writer.as_default(step=step):
                for name, value in values.items():
                    if name != "step":
                        tf.summary.scalar(name, value)
            with tf.io.gfile.GFile(os.path.join(self.output_dir, "train_metrics.jsonl"), "a") as f:
                f.write(json.dumps(values, sort_keys=True) + "\n")
        return values

    def _log_eval(self, results, step):
        """An evaluation's numeric results: TensorBoard's ``eval`` run and train_metrics.jsonl (as eval_<name>)."""
        if not self.is_chief:
            return
        values = {f"eval_{k}": float(v) for k, v in results.items()
                  if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if getattr(self, "_eval_writer", None) is None:
            self._eval_writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", "eval"))
        with self._eval_writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name[len("eval_"):], value)
        self._eval_writer.flush()
        with tf.io.gfile.GFile(os.path.join(self.output_dir, "train_metrics.jsonl"), "a") as f:
            f.write(json.dumps(dict(values, step=step), sort_keys=True) + "\n")

    # A one-line warning when the measured rate says the run needs longer than this.
    LONG_RUN_HOURS = 24.0

    def _warn_if_long(self, step, num_train_steps, chunk, seconds):
        hours = (num_train_steps - step) * seconds / max(chunk, 1) / 3600
        if hours > self.LONG_RUN_HOURS and self.is_chief:
            warn(f"at the measured {seconds / max(chunk, 1):.3g} s/step the remaining {num_train_steps - step} steps "
                 f"take about {hours:.1f} hours: lower --num_train_steps/--num_train_epochs, or use a GPU/TPU "
                 "(--strategy) or --mixed_precision")

    def train(self, dataset_fn, num_train_steps, eval_fn=None, eval_steps=None, metric_for_best_model=None,
              greater_is_better=True, early_stopping_patience=None, overwrite_output_dir=False, verbose=True):
        """Trains to ``num_train_steps`` (resuming from the latest checkpoint), returns a summary dict.

        ``dataset_fn(input_context)`` returns the per-replica batched training dataset.
        ``eval_fn(model) -> {metric: value}`` runs every ``eval_steps`` and at the end.
        """
        if num_train_steps <= 0:
            raise UserError(f"--num_train_steps={num_train_steps} must be positive")
        fileio.ensure_dir(self.output_dir)
        # Workers of one multi-worker run share output_dir; the chief alone holds its lock.
        lock = run_lock.hold(self.output_dir, overwrite_output_dir) if self.is_chief else contextlib.nullcontext()
        with lock:
            return self._train(dataset_fn, num_train_steps, eval_fn, eval_steps, metric_for_best_model,
                               greater_is_better, early_stopping_patience, verbose)

    def _train(self, dataset_fn, num_train_steps, eval_fn, eval_steps, metric_for_best_model, greater_is_better,
               early_stopping_patience, verbose):
        checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                         dropout_generators=_dropout_generators(self.model))
        checkpoint_dir = os.path.join(self.output_dir, "checkpoints")
        # Every worker restores the chief's checkpoint so all resume at the same step; saving is a
        # collective, so non-chief workers save too, into a private directory removed right after.
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        if not self.is_chief:
            checkpoint_dir = os.path.join(self.output_dir, f".worker_{self.strategy.cluster_resolver.task_id}_tmp")
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=self.max_checkpoints)
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()

        def save(step):
            manager.save(checkpoint_number=step)
            if not self.is_chief:
                tf.io.gfile.rmtree(checkpoint_dir)
        start_step = self.global_step
        if self.is_chief:
            _drop_rows_after(os.path.join(self.output_dir, "train_metrics.jsonl"), start_step)
        # The data position is a function of the step: make_dataset starts its pipeline there by
        # arithmetic (distributed iterators cannot be checkpointed on every strategy, and each worker
        # would need its own state). A pipeline that cannot place itself is replayed instead.
        consumed = start_step * self.gradient_accumulation_steps

        def resumed_dataset_fn(context):
            position = records.InputPosition(context, consumed)
            dataset = dataset_fn(position)
            return dataset.skip(position.local_batches) if consumed and not position.placed else dataset

        iterator = iter(distribute.distribute_dataset(self.strategy, resumed_dataset_fn))
        if self._train_steps is None:
            self._train_steps = self._build_train_steps()
        writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", "train")) \
            if self.is_chief else tf.summary.create_noop_writer()
        best = _BestTracker(self.output_dir, self.model, metric_for_best_model, greater_is_better, self.is_chief)
        history, eval_history = [], []
        bar = progress.Bar(num_train_steps, initial=start_step, unit="step", desc="train", enabled=verbose)
        step, log_started, log_step = start_step, time.time(), start_step
        self._stop_signal, self._stopping_at = None, step
        watch = _SigtermWatch(self)
        watch.start()
        stopped_early = False
        rate_checked = False
        train_seconds = 0.0  # time inside training steps only (tracing included; eval and saving not)
        try:
            while step < num_train_steps:
                boundaries = [num_train_steps, _next_multiple(step, self.save_checkpoints_steps),
                              _next_multiple(step, self.log_steps)]
                if eval_fn and eval_steps:
                    boundaries.append(_next_multiple(step, eval_steps))
                chunk = min(self.steps_per_execution, min(boundaries) - step)
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
                    raise UserError(records.describe_corruption(error)) from None
                step += chunk
                self._stopping_at = step
                bar.update(step, warmup=step == start_step + 1)
                # Before logging or saving: a non-finite state must never overwrite a good checkpoint.
                self._check_numerics(step, chunk, manager.latest_checkpoint)
                if not rate_checked and step > start_step + 1:  # the first call traced and compiled
                    rate_checked = True
                    self._warn_if_long(step, num_train_steps, chunk, time.time() - chunk_started)
                if step % self.log_steps == 0 or step == num_train_steps:
                    values = self._log(step, writer, log_started, step - log_step)
                    bar.set_postfix(loss=values["loss"])
                    history.append(values)
                    log_started, log_step = time.time(), step
                saved = step % self.save_checkpoints_steps == 0 or step == num_train_steps
                if saved:
                    save(step)
                if self._stop_signal is not None:
                    if not saved:
                        save(step)
                    raise UserError(f"stopped by signal {self._stop_signal} at step {step}; checkpoint saved in "
                                    f"{checkpoint_dir}: rerun the same command to resume")
                if eval_fn and ((eval_steps and step % eval_steps == 0) or step == num_train_steps):
                    self._evaluating = True
                    try:
                        results = dict(eval_fn(self.model), step=step)
                    finally:
                        self._evaluating = False
                    eval_history.append(results)
                    self._log_eval(results, step)
                    if best.update(results, step) is False and early_stopping_patience and \
                            best.evals_since_best >= early_stopping_patience:
                        stopped_early = True
                        if step != log_step:  # the training metrics since the last log line are kept too
                            history.append(self._log(step, writer, log_started, step - log_step))
                        break
        finally:
            bar.close()
            watch.stop()
        if stopped_early:
            save(step)
        return {"global_step": step, "train_history": history, "eval_history": eval_history,
                "best": best.summary(), "stopped_early": stopped_early, "train_seconds": train_seconds,
                "skipped_batches": int(self.skipped_batches.numpy()),
                "corrupt_files_skipped": dict(records.SKIPPED_CORRUPT)}

    def restore_best(self):
        _BestTracker.restore(self.output_dir, self.model)

    # ---- inference ---------------------------------------------------------------------------
    def predict(self, dataset_fn, keep_features=(), verbose=False, total_batches=None, label=None):
        """Runs the model over a finite dataset; returns numpy outputs (plus ``keep_features``) in order.

        ``label`` names the progress line: by default "eval" inside training's evaluation hook,
        "predict" elsewhere.
        """
        label = label or ("eval" if self._evaluating else "predict")
        if distribute.num_workers(self.strategy) > 1:
            # Sharding across workers would leave each worker (and the chief's results file) with
            # part of the predictions: every worker predicts the whole set locally, in order.
            context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                                 num_replicas_in_sync=self.strategy.num_replicas_in_sync)
            dataset = dataset_fn(context)
            run = lambda fn, args: [fn(*args)]  # noqa: E731
        else:
            dataset = distribute.distribute_dataset(self.strategy, dataset_fn)
            run = lambda fn, args: self._local_results(self.strategy.run(fn, args=args))  # noqa: E731
        key = tuple(keep_features)
        tracing = key not in self._predict_fns  # the first batch then traces: timed apart from the rate
        if tracing:
            def replica_predict(features):
                outputs = self.model(features, training=False)
                outputs.update({k: features[k] for k in keep_features})
                return outputs

            # Partial last batches and length buckets change shapes; relax them instead of retracing
            # (under XLA each shape compiles once).
            self._predict_fns[key] = tf.function(replica_predict, reduce_retracing=not self.jit_compile,
                                                 jit_compile=self.jit_compile or None)
        replica_predict = self._predict_fns[key]
        batches = []
        bar = progress.Bar(total_batches, unit="batch", desc=label, enabled=verbose)
        for features in dataset:
            for local in run(replica_predict, (features,)):
                batches.append({k: t.numpy() for k, t in local.items()})
            bar.update(len(batches), warmup=tracing)
        bar.close()
        return {k: _concat_padded([b[k] for b in batches if b[k].shape[0]]) for k in (batches[0] if batches else {})}


    def _local_results(self, per_replica):
        """{name: PerReplica} -> one {name: tensor} dict per local replica, in replica order."""
        locals_ = [self.strategy.experimental_local_results(v) for v in per_replica.values()]
        return [dict(zip(per_replica.keys(), values)) for values in zip(*locals_)]


def _dropout_generators(model):
    """The random generators of the model's dropout (and other random) layers, in layer order.

    Keras deliberately leaves them out of a layer's checkpoint dependencies (weights files stay as
    they were), so the trainer checkpoints them itself.
    """
    generators = []
    for layer in model.submodules:
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if isinstance(generator, tf.random.Generator):
            generators.append(generator)
    return generators


class _SigtermWatch:
    """Acts on SIGTERM while the main thread is inside a compiled chunk of steps.

    Python runs signal handlers only between bytecodes of the main thread, which a chunk of
    ``steps_per_execution`` steps can hold for minutes. The interpreter's C-level handler also
    writes the signal number to a wakeup fd at once; a thread reading it reports the stop
    immediately, and the loop saves and exits at the chunk boundary.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self._previous_handler = self._previous_fd = self._thread = None

    def start(self):
        self._previous_handler = signal.signal(signal.SIGTERM, self.trainer._on_sigterm)
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
                self.trainer._on_sigterm(signal.SIGTERM)

    def stop(self):
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGTERM, self._previous_handler)
        os.write(self._write_fd, b"\xff")  # wakes the reader so it ends
        self._thread.join(timeout=5)
        os.close(self._write_fd)
        os.close(self._read_fd)


def _concat_padded(arrays):
    """Concatenates batches whose second axis may differ (length buckets), padding with zeros."""
    if not arrays:
        return np.zeros((0,))
    if arrays[0].ndim < 2:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays]
    return np.concatenate(padded)


def _drop_rows_after(path, step):
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


def _next_multiple(step, every):
    return (step // every + 1) * every


class _BestTracker:
    """Keeps the weights of the best evaluation so far under output_dir/best (written atomically)."""

    def __init__(self, output_dir, model, metric, greater_is_better, is_chief):
        self.directory = os.path.join(output_dir, "best")
        self.model, self.metric, self.greater = model, metric, greater_is_better
        self.is_chief = is_chief
        self.best_value, self.best_step, self.evals_since_best = None, None, 0
        state_path = os.path.join(self.directory, "best.json")
        if metric and tf.io.gfile.exists(state_path):
            state = fileio.read_json(state_path)
            if state.get("metric") == metric:
                self.best_value, self.best_step = state["value"], state["step"]

    def update(self, results, step):
        if not self.metric:
            return None
        if self.metric not in results:
            raise UserError(f"--metric_for_best_model={self.metric} is not among the evaluation metrics "
                            f"{sorted(k for k in results if k != 'step')}: pick one of them")
        value = results[self.metric]
        improved = self.best_value is None or (value > self.best_value if self.greater else value < self.best_value)
        if not improved:
            self.evals_since_best += 1
            return False
        self.best_value, self.best_step, self.evals_since_best = value, step, 0
        if self.is_chief:
            # model.index last: restore() trusts best/ once it exists (object-store publication).
            with fileio.atomic_path(self.directory, marker="model.index") as temp:
                tf.train.Checkpoint(model=self.model).write(os.path.join(temp, "model"))
                fileio.write_json(os.path.join(temp, "best.json"),
                                  {"metric": self.metric, "value": value, "step": step})
        return True

    def summary(self):
        return {"metric": self.metric, "value": self.best_value, "step": self.best_step} if self.metric else None

    @staticmethod
    def restore(output_dir, model):
        path = os.path.join(output_dir, "best", "model")
        if tf.io.gfile.exists(path + ".index"):
            tf.train.Checkpoint(model=model).read(path).expect_partial()
            return True
        return False
