"""The compiled training step: forward, backward, all-reduce, clip, apply and metrics, several steps per call."""
import tensorflow as tf
import tf_keras


class TrainSteps:
    """Builds ``train_steps(iterator, steps)``, one ``tf.function`` running ``steps`` optimizer steps.

    Made in the strategy's scope: it owns variables (the running metrics, the skipped-batch
    counter, and with gradient accumulation the accumulators), which checkpoints do not keep.
    """

    def __init__(self, strategy, model, optimizer, settings):
        self.strategy, self.model, self.optimizer, self.settings = strategy, model, optimizer, settings
        names = ("loss",) + tuple(getattr(model, "train_metric_names", ()))
        self.metrics = {name: tf_keras.metrics.Mean(name=name) for name in names}
        self.skipped_batches = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._accumulated = None
        if settings.gradient_accumulation_steps > 1:
            # Gradients are all-reduced before accumulating, so every replica holds the same sum.
            first = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self._accumulated = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False, aggregation=first)
                                 for v in model.trainable_variables]
            self._accumulated_loss = tf.Variable(0.0, trainable=False, aggregation=first)

    def _forward_backward(self, features):
        """(outputs, per-example losses, loss, gradients summed over all replicas) for this replica's batch."""
        model, optimizer, fp16 = self.model, self.optimizer, self.settings.mixed_precision == "fp16"
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example = tf.cast(model.per_example_loss(features, outputs), tf.float32)
            loss = tf.reduce_sum(per_example) / self.settings.global_batch_size
            scaled = optimizer.get_scaled_loss(loss) if fp16 else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if fp16:
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
        if self.settings.clip_norm:  # 0: off, the plain Keras recipe's choice
            grads, _ = tf.clip_by_global_norm(grads, self.settings.clip_norm)
        if self.settings.nan_policy != "skip_batch":
            optimizer.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)
            return

        def apply():
            optimizer.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)
            return tf.constant(0, tf.int64)

        self.skipped_batches.assign_add(tf.cond(finite, apply, lambda: tf.constant(1, tf.int64)))

    def _update_metrics(self, features, outputs, per_example):
        if self.settings.nan_policy == "skip_batch":
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
        if self.settings.nan_policy == "skip_batch":
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
        k = float(self.settings.gradient_accumulation_steps)
        grads = [tf.cast(a / k, v.dtype) for a, v in zip(self._accumulated, variables)]
        self._apply(grads, tf.math.is_finite(self._accumulated_loss))
        for accumulator in self._accumulated:
            accumulator.assign(tf.zeros_like(accumulator))
        self._accumulated_loss.assign(0.0)

    def build(self):
        jit = self.settings.jit_compile or None
        if self.settings.gradient_accumulation_steps > 1:
            return self._build_accumulating(jit)
        replica_step = tf.function(self._replica_step, jit_compile=jit)

        @tf.function
        def train_steps(iterator, steps):
            for _ in tf.range(steps):
                self.strategy.run(replica_step, args=(next(iterator),))

        return train_steps

    def _build_accumulating(self, jit):
        accumulate = tf.function(self._replica_accumulate, jit_compile=jit)
        apply = tf.function(self._replica_apply_accumulated, jit_compile=jit)
        k = self.settings.gradient_accumulation_steps

        @tf.function
        def train_steps(iterator, steps):
            for _ in tf.range(steps):
                for _ in tf.range(k):
                    self.strategy.run(accumulate, args=(next(iterator),))
                self.strategy.run(apply)

        return train_steps
