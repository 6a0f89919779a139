"""Batched prediction over a finite dataset, on any strategy, results in input order as numpy arrays."""
import numpy as np
import tensorflow as tf

from bert_tf import distribute
from bert_tf.training import progress


class BatchPredictor:
    """Runs a model in inference mode; one compiled function per set of kept features."""

    def __init__(self, strategy, model, jit_compile=False):
        self.strategy, self.model, self.jit_compile = strategy, model, jit_compile
        self._functions = {}

    def predict(self, dataset_fn, keep_features=(), verbose=False, total_batches=None, label="predict"):
        """{output name: array} over the whole dataset (plus ``keep_features`` from the input), in order."""
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
        tracing = key not in self._functions  # the first batch then traces: timed apart from the rate
        if tracing:
            def replica_predict(features):
                outputs = self.model(features, training=False)
                outputs.update({k: features[k] for k in keep_features})
                return outputs

            # Partial last batches and length buckets change shapes; relax them instead of retracing
            # (under XLA each shape compiles once).
            self._functions[key] = tf.function(replica_predict, reduce_retracing=not self.jit_compile,
                                               jit_compile=self.jit_compile or None)
        replica_predict = self._functions[key]
        batches = []
        bar = progress.Bar(total_batches, unit="batch", desc=label, enabled=verbose)
        for features in dataset:
            for local in run(replica_predict, (features,)):
                batches.append({k: t.numpy() for k, t in local.items()})
            bar.update(len(batches), warmup=tracing)
        bar.close()
        return {k: concat_padded([b[k] for b in batches if b[k].shape[0]]) for k in (batches[0] if batches else {})}

    def _local_results(self, per_replica):
        """{name: PerReplica} -> one {name: tensor} dict per local replica, in replica order."""
        locals_ = [self.strategy.experimental_local_results(v) for v in per_replica.values()]
        return [dict(zip(per_replica.keys(), values)) for values in zip(*locals_)]


def concat_padded(arrays):
    """Concatenates batches whose second axis may differ (length buckets), padding with zeros."""
    if not arrays:
        return np.zeros((0,))
    if arrays[0].ndim < 2:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays]
    return np.concatenate(padded)
