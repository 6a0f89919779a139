"""A run's checkpoints (output_dir/checkpoints, resumed from) and its best evaluation's weights (output_dir/best)."""
import os

import tensorflow as tf

from bert_tf import fileio
from bert_tf.errors import ParameterError


def dropout_generators(model):
    """The random generators of the model's dropout (and other random) layers, in layer order.

    Keras deliberately leaves them out of a layer's checkpoint dependencies (weights files stay as
    they were), so the trainer checkpoints them itself: a resumed run then draws the dropout masks
    the uninterrupted run would have.
    """
    generators = []
    for layer in model.submodules:
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if isinstance(generator, tf.random.Generator):
            generators.append(generator)
    return generators


class RunCheckpoints:
    """Weights, optimizer (with its step) and dropout generators under output_dir/checkpoints.

    Opening restores the latest checkpoint. Every worker restores the chief's, so all resume at
    the same step; saving is a collective, so non-chief workers save too, into a private
    directory removed right after.
    """

    def __init__(self, output_dir, model, optimizer, max_to_keep, is_chief, task_id=None):
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                         dropout_generators=dropout_generators(model))
        self.directory = os.path.join(output_dir, "checkpoints")
        latest = tf.train.latest_checkpoint(self.directory)
        self.is_chief = is_chief
        if not is_chief:
            self.directory = os.path.join(output_dir, f".worker_{task_id}_tmp")
        self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=max_to_keep)
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def save(self, step):
        self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            tf.io.gfile.rmtree(self.directory)


class BestModel:
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
        """True if ``results`` improve on the best (their weights are then kept), False if not, None
        without a metric to track."""
        if not self.metric:
            return None
        if self.metric not in results:
            raise ParameterError(f"metric_for_best_model={self.metric} is not among the evaluation metrics "
                                 f"{sorted(k for k in results if k != 'step')}: pick one of them",
                                 "metric_for_best_model")
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
