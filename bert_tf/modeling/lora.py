"""Parameter-efficient fine-tuning: LoRA on attention query/value projections, or a frozen encoder.

LoRA (Hu et al., 2021) keeps a pretrained projection ``W`` frozen and learns a low-rank update:
``y = x W + b + (alpha / r) * x A B`` with ``A`` [in, r] random and ``B`` [r, out] zero, so training
starts from the pretrained function exactly. Only ``A``, ``B`` and the task head train.

``merged_kernels`` gives ``W + (alpha / r) A B`` for saving (``checkpoints.save_hf`` writes those, so
saved models and exports are plain BERT weights with no LoRA ops); ``merge_lora`` folds the update
into the kernels in place and removes the wrappers.
"""
import tensorflow as tf
import tf_keras

from bert_tf.errors import UserError

PROJECTIONS = ("query", "value")


class LoraDense(tf_keras.layers.Layer):
    """A built ``Dense`` (frozen) plus a trainable low-rank update of its output."""

    def __init__(self, base, rank, alpha, seed=None, **kwargs):
        super().__init__(name=f"{base.name}_lora", **kwargs)
        if rank <= 0:
            raise ValueError(f"LoRA rank must be positive, got {rank}")
        self.base = base
        self.base.trainable = False
        self.rank = rank
        self.scale = float(alpha) / rank
        in_dim, out_dim = base.kernel.shape
        # Variable names sit next to the kernel's ('.../attention/self/query/lora_a') and match no
        # Hugging Face weight, so the loader and save_hf never confuse them with the base.
        scope = base.kernel.name.rsplit("/", 1)[0]
        with tf.name_scope(scope + "/"):
            self.lora_a = tf.Variable(tf_keras.initializers.HeUniform(seed=seed)((in_dim, rank)), name="lora_a")
            self.lora_b = tf.Variable(tf.zeros((rank, out_dim)), name="lora_b")

    def call(self, inputs):
        update = tf.matmul(tf.matmul(inputs, tf.cast(self.lora_a, inputs.dtype)), tf.cast(self.lora_b, inputs.dtype))
        return self.base(inputs) + tf.cast(self.scale, inputs.dtype) * update

    def delta(self):
        """The kernel update ``(alpha / r) A B``."""
        return self.scale * tf.matmul(self.lora_a, self.lora_b)


def _attention_layers(model):
    bert = getattr(model, "bert", None)
    return [layer.attention.self_attention for layer in bert.encoder.layer] if bert is not None else []


def lora_layers(model):
    """(attention layer, attribute, LoraDense) for every wrapped projection."""
    return [(attention, name, getattr(attention, name)) for attention in _attention_layers(model)
            for name in PROJECTIONS if isinstance(getattr(attention, name), LoraDense)]


def _set_sublayer(parent, name, layer):
    # Deleting first drops the old layer from Keras' tracking, so its weights are not listed twice.
    delattr(parent, name)
    setattr(parent, name, layer)


def _freeze_encoder(model):
    """Marks every weight-owning layer of the encoder non-trainable (LoRA layers excepted)."""
    for layer in model.bert.submodules:
        if isinstance(layer, tf_keras.layers.Layer) and not isinstance(layer, LoraDense) \
                and getattr(layer, "_trainable_weights", None):
            layer.trainable = False


def apply_lora(model, rank, alpha, seed=None):
    """Wraps every attention query/value projection of the built ``model`` in ``LoraDense`` and
    freezes the rest of the encoder; the task head stays trainable. Returns the model."""
    if not model.built:
        model.build_with_dummies()
    if lora_layers(model):
        raise ValueError("the model already has LoRA layers")
    for index, attention in enumerate(_attention_layers(model)):
        for offset, name in enumerate(PROJECTIONS):
            layer_seed = None if seed is None else seed + 2 * index + offset
            _set_sublayer(attention, name, LoraDense(getattr(attention, name), rank, alpha, seed=layer_seed))
    _freeze_encoder(model)
    return model


def freeze_encoder(model):
    """Trains the task head only. Returns the model."""
    if not model.built:
        model.build_with_dummies()
    model.bert.trainable = False
    return model


def apply_peft(model, lora_rank=0, lora_alpha=16.0, freeze=False, seed=None):
    """The ``--lora_rank``/``--lora_alpha``/``--freeze_encoder`` settings applied to a built model."""
    if lora_rank and freeze:
        raise UserError("--lora_rank and --freeze_encoder exclude each other: LoRA already freezes the encoder "
                        "and trains A/B plus the head; pick one")
    if lora_rank:
        return apply_lora(model, lora_rank, lora_alpha, seed=seed)
    if freeze:
        return freeze_encoder(model)
    return model


def merged_kernels(model):
    """[(base kernel variable, merged kernel tensor)] for every LoRA projection (empty without LoRA)."""
    return [(layer.base.kernel, layer.base.kernel + layer.delta()) for _, _, layer in lora_layers(model)]


def merge_lora(model):
    """Folds each LoRA update into its kernel and puts the plain ``Dense`` back, in place.

    Outputs are unchanged (up to float rounding); the model then has no LoRA ops or variables.
    Functions traced before the merge must not be reused: they would add the update twice.
    """
    for attention, name, layer in lora_layers(model):
        layer.base.kernel.assign_add(layer.delta())
        _set_sublayer(attention, name, layer.base)
    return model
