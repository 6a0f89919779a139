"""Fine-tuning models: the Hugging Face BERT main layer with one head per task family.

Each model names its layers as the matching Hugging Face ``TFBertFor*`` class does
(``bert``, ``classifier``, ``qa_outputs``), so weights move between the two by variable name
(see ``checkpoints.py``) and saved models load with ``from_pretrained``.

Every model maps a features dict (``input_ids``, ``attention_mask``, ``token_type_ids`` and
labels) to a dict of outputs, and defines ``per_example_loss`` and ``train_metrics`` for the
trainer; the trainer alone decides how losses are averaged over replicas.
"""
import collections
import copy

import tensorflow as tf
import tf_keras

from bert_tf.data import packing
from bert_tf.data.tagging import IGNORE_LABEL

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PackedEncoding = collections.namedtuple("PackedEncoding", ["last_hidden_state", "pooler_output"])


def _initializer(config):
    return tf_keras.initializers.TruncatedNormal(stddev=config.initializer_range)


class BertTaskModel(tf_keras.Model):
    """Base: holds ``bert`` (TFBertMainLayer); subclasses add a head."""

    hf_class_name = "TFBertModel"
    task = "encoder"
    add_pooling_layer = True

    def __init__(self, config, name=None, **kwargs):
        # Deferred: transformers takes seconds to import, and scripts' --help and flag errors need none of it.
        from transformers.models.bert.modeling_tf_bert import TFBertMainLayer

        super().__init__(name=name or f"bert_{self.task}", **kwargs)
        self.config = config
        self.bert = TFBertMainLayer(config, add_pooling_layer=self.add_pooling_layer, name="bert")

    @property
    def hf_class(self):
        import transformers  # deferred, as in __init__

        return getattr(transformers, self.hf_class_name)

    def encode(self, features, training):
        if "packed_segments" in features:
            return self._encode_packed(features, training)
        return self.bert(input_ids=features["input_ids"], attention_mask=features["attention_mask"],
                         token_type_ids=features["token_type_ids"], training=training)

    def _encode_packed(self, features, training):
        """A packed batch (bert_tf/data/packing.py) through the same layers as ``self.bert`` would run
        it, with each example's own positions and a block-diagonal mask: TFBertMainLayer itself only
        takes a [batch, length] mask. ``pooler_output`` is per example; ``last_hidden_state`` per row."""
        bert = self.bert
        embedded = bert.embeddings(input_ids=features["input_ids"], position_ids=features["position_ids"],
                                   token_type_ids=features["token_type_ids"], training=training)
        layers = self.config.num_hidden_layers
        bias = packing.packed_attention_bias(features["packed_segments"], embedded.dtype)
        encoded = bert.encoder(hidden_states=embedded, attention_mask=bias, head_mask=[None] * layers,
                               encoder_hidden_states=None, encoder_attention_mask=None,
                               past_key_values=[None] * layers, use_cache=False, output_attentions=False,
                               output_hidden_states=False, return_dict=True, training=training)
        sequence = encoded.last_hidden_state
        first_tokens = tf.gather_nd(sequence, features["example_positions"])
        pooled = bert.pooler(hidden_states=first_tokens[:, None, :]) if bert.pooler is not None else None
        return PackedEncoding(last_hidden_state=sequence, pooler_output=pooled)

    def call(self, features, training=False):
        outputs = self.encode(features, training)
        return {"sequence_output": outputs.last_hidden_state, "pooled_output": outputs.pooler_output}

    def dummy_features(self, batch_size=2, seq_length=8):
        return {k: tf.ones((batch_size, seq_length), tf.int32) for k in MODEL_INPUTS}

    def build_with_dummies(self):
        self(self.dummy_features(), training=False)
        return self


class SequenceClassifier(BertTaskModel):
    """[CLS] pooled output -> dropout -> dense. ``num_labels=1`` makes it a regressor (MSE)."""

    hf_class_name = "TFBertForSequenceClassification"
    task = "classification"
    train_metric_names = ("accuracy",)

    def __init__(self, config, num_labels, regression=False, **kwargs):
        # The HF twin (loading, save_hf) must have a head of the same size: 3 labels or regression
        # would otherwise mismatch the default num_labels=2.
        super().__init__(_with_num_labels(config, 1 if regression else num_labels), **kwargs)
        self.num_labels = 1 if regression else num_labels
        self.regression = regression
        if regression:
            self.task, self.train_metric_names = "regression", ()
        self.dropout = tf_keras.layers.Dropout(_head_dropout_rate(config))
        self.classifier = tf_keras.layers.Dense(self.num_labels, kernel_initializer=_initializer(config),
                                                name="classifier")

    def call(self, features, training=False):
        pooled = self.encode(features, training).pooler_output
        logits = tf.cast(self.classifier(self.dropout(pooled, training=training)), tf.float32)
        if self.regression:
            return {"score": logits[:, 0]}
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    def per_example_loss(self, features, outputs):
        if self.regression:
            return tf.square(outputs["score"] - tf.reshape(features["label_values"], [-1]))
        labels = tf.reshape(features["label_ids"], [-1])
        return tf_keras.losses.sparse_categorical_crossentropy(labels, outputs["logits"], from_logits=True)

    def train_metrics(self, features, outputs):
        if self.regression:
            return {}
        labels = tf.reshape(features["label_ids"], [-1])
        predictions = tf.argmax(outputs["logits"], axis=-1, output_type=labels.dtype)
        return {"accuracy": (tf.cast(tf.equal(predictions, labels), tf.float32), None)}


def _head_dropout_rate(config):
    """Dropout before every head, as Hugging Face's classes set it: classifier_dropout when the config has
    one, else hidden_dropout_prob."""
    rate = getattr(config, "classifier_dropout", None)
    return config.hidden_dropout_prob if rate is None else rate


def _with_num_labels(config, num_labels):
    """A copy of ``config`` whose ``num_labels`` sizes the head, as Hugging Face's classes read it.

    The loader builds ``hf_class(config)`` and saved config.json files must say the real size,
    or the head would not load (here or in ``from_pretrained``).
    """
    config = copy.deepcopy(config)
    config.num_labels = num_labels
    return config


class TokenTagger(BertTaskModel):
    """Sequence output -> dropout -> dense per token. Positions labelled ``IGNORE_LABEL`` are skipped."""

    hf_class_name = "TFBertForTokenClassification"
    task = "tagging"
    add_pooling_layer = False
    train_metric_names = ("accuracy",)

    def __init__(self, config, num_labels, **kwargs):
        super().__init__(_with_num_labels(config, num_labels), **kwargs)
        self.num_labels = num_labels
        self.dropout = tf_keras.layers.Dropout(_head_dropout_rate(config))
        self.classifier = tf_keras.layers.Dense(num_labels, kernel_initializer=_initializer(config),
                                                name="classifier")

    def call(self, features, training=False):
        sequence = self.encode(features, training).last_hidden_state
        logits = tf.cast(self.classifier(self.dropout(sequence, training=training)), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    @staticmethod
    def _labelled(features):
        labels = features["label_ids"]
        # Negative ids (IGNORE_LABEL, or a word whose gold tag is unknown) stay out of loss and metrics.
        return labels, tf.cast(labels >= 0, tf.float32)

    def per_example_loss(self, features, outputs):
        labels, weights = self._labelled(features)
        token_loss = tf_keras.losses.sparse_categorical_crossentropy(
            tf.maximum(labels, 0), outputs["logits"], from_logits=True)
        # Mean over each example's labelled words; an example with none contributes zero.
        return tf.reduce_sum(token_loss * weights, axis=-1) / tf.maximum(tf.reduce_sum(weights, axis=-1), 1.0)

    def train_metrics(self, features, outputs):
        labels, weights = self._labelled(features)
        predictions = tf.argmax(outputs["logits"], axis=-1, output_type=labels.dtype)
        correct = tf.cast(tf.equal(predictions, labels), tf.float32)
        return {"accuracy": (tf.reshape(correct, [-1]), tf.reshape(weights, [-1]))}


class SpanQA(BertTaskModel):
    """Sequence output -> dense(2) -> start and end logits; padding positions get a large negative."""

    hf_class_name = "TFBertForQuestionAnswering"
    task = "squad"
    add_pooling_layer = False
    train_metric_names = ("start_accuracy", "end_accuracy")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.qa_outputs = tf_keras.layers.Dense(2, kernel_initializer=_initializer(config), name="qa_outputs")

    def call(self, features, training=False):
        sequence = self.encode(features, training).last_hidden_state
        logits = tf.cast(self.qa_outputs(sequence), tf.float32)
        padding = (1.0 - tf.cast(features["attention_mask"], tf.float32)) * -10000.0
        return {"start_logits": logits[..., 0] + padding, "end_logits": logits[..., 1] + padding}

    def per_example_loss(self, features, outputs):
        loss = 0.0
        for key in ("start", "end"):
            positions = tf.reshape(features[f"{key}_positions"], [-1])
            loss += tf_keras.losses.sparse_categorical_crossentropy(positions, outputs[f"{key}_logits"],
                                                                    from_logits=True)
        return loss / 2.0

    def train_metrics(self, features, outputs):
        result = {}
        for key in ("start", "end"):
            positions = tf.reshape(features[f"{key}_positions"], [-1])
            predicted = tf.argmax(outputs[f"{key}_logits"], axis=-1, output_type=positions.dtype)
            result[f"{key}_accuracy"] = (tf.cast(tf.equal(predicted, positions), tf.float32), None)
        return result


class MultipleChoice(BertTaskModel):
    """Inputs [batch, choices, length] run flattened; pooled output -> dropout -> dense(1) per choice."""

    hf_class_name = "TFBertForMultipleChoice"
    task = "multiple_choice"
    train_metric_names = ("accuracy",)

    def __init__(self, config, num_choices, **kwargs):
        super().__init__(config, **kwargs)
        self.num_choices = num_choices
        self.dropout = tf_keras.layers.Dropout(_head_dropout_rate(config))
        self.classifier = tf_keras.layers.Dense(1, kernel_initializer=_initializer(config), name="classifier")

    def dummy_features(self, batch_size=2, seq_length=8):
        return {k: tf.ones((batch_size, self.num_choices, seq_length), tf.int32) for k in MODEL_INPUTS}

    def call(self, features, training=False):
        length = tf.shape(features["input_ids"])[-1]
        flat = {k: tf.reshape(features[k], [-1, length]) for k in MODEL_INPUTS}
        pooled = self.encode(flat, training).pooler_output
        scores = tf.cast(self.classifier(self.dropout(pooled, training=training)), tf.float32)
        logits = tf.reshape(scores, [-1, self.num_choices])
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    def per_example_loss(self, features, outputs):
        labels = tf.reshape(features["label_ids"], [-1])
        return tf_keras.losses.sparse_categorical_crossentropy(labels, outputs["logits"], from_logits=True)

    def train_metrics(self, features, outputs):
        labels = tf.reshape(features["label_ids"], [-1])
        predictions = tf.argmax(outputs["logits"], axis=-1, output_type=labels.dtype)
        return {"accuracy": (tf.cast(tf.equal(predictions, labels), tf.float32), None)}
