"""Optimizers and learning-rate schedules shared by pretraining and every fine-tuning task."""
import tensorflow as tf
import tf_keras

from bert_tf.errors import UserError

# BERT's recipe: no weight decay on LayerNorm parameters and biases.
NO_DECAY = ["LayerNorm", "layer_norm", "bias"]


class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay_span = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        warming = self.peak * step / warmup
        decaying = self.peak * tf.maximum(0.0, 1.0 - (step - self.warmup_steps) / decay_span)
        return tf.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def create_optimizer(learning_rate, num_train_steps, num_warmup_steps, weight_decay=0.01, optimizer="adamw",
                     beta_1=0.9, beta_2=0.999, epsilon=1e-6):
    """AdamW (or LAMB) on the warmup/linear-decay schedule, decay excluded from LayerNorm and bias."""
    if learning_rate <= 0:
        raise UserError(f"--learning_rate={learning_rate} must be positive")
    if num_warmup_steps < 0:
        raise UserError(f"--num_warmup_steps={num_warmup_steps} must not be negative")
    schedule = WarmupLinearDecay(learning_rate, num_train_steps, num_warmup_steps)
    if optimizer == "adamw":
        opt = tf_keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1,
                                        beta_2=beta_2, epsilon=epsilon)
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
        return opt
    if optimizer == "lamb":
        from bert_tf.training.lamb import Lamb

        return Lamb(learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                    epsilon=epsilon, exclude_from_weight_decay=NO_DECAY, exclude_from_layer_adaptation=NO_DECAY)
    raise UserError(f"--optimizer={optimizer} is unknown: use adamw or lamb")
