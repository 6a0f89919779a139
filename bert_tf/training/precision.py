"""Mixed precision: the Keras policy behind each ``mixed_precision`` choice."""
import tf_keras

from bert_tf.errors import ParameterError

PRECISION_POLICIES = {"no": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}


def check_precision(mixed_precision):
    if mixed_precision not in PRECISION_POLICIES:
        raise ParameterError(f"mixed_precision={mixed_precision} is unknown: use no, fp16 or bf16", "mixed_precision")


def set_precision(mixed_precision):
    """Sets Keras' global policy: layers built afterwards compute in it (Keras reads it at construction)."""
    check_precision(mixed_precision)
    tf_keras.mixed_precision.set_global_policy(PRECISION_POLICIES[mixed_precision])


def wrap_optimizer(optimizer, mixed_precision):
    """fp16 needs loss scaling (its range underflows small gradients); bf16 and float32 do not."""
    if mixed_precision == "fp16":
        return tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
