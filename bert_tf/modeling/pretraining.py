"""BERT pretraining model: masked-LM head tied to the word embeddings plus next-sentence head.

Architecturally ``TFBertForPreTraining``, with the same layer names (``bert``, ``mlm___cls``,
``nsp___cls``) so checkpoints move both ways by variable name (``checkpoints.load_weights`` /
``save_hf``). Unlike it, the vocabulary projection runs only at ``masked_lm_positions``: with a
30k vocabulary, projecting all S positions is most of the head's cost while only P << S are
scored.
"""
import tensorflow as tf
import tf_keras

from bert_tf.modeling.tasks import BertTaskModel

MASK_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")


class BertPretrainingModel(BertTaskModel):
    """Outputs ``mlm_logits`` [B, P, V] at the masked positions and ``nsp_logits`` [B, 2].

    Loss per example: its masked-LM cross-entropy averaged over its real predictions
    (``masked_lm_weights``) plus its next-sentence cross-entropy (label 1 = random next).
    """

    hf_class_name = "TFBertForPreTraining"
    task = "pretraining"
    train_metric_names = ("mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy")

    def __init__(self, config, **kwargs):
        from transformers.models.bert.modeling_tf_bert import TFBertMLMHead, TFBertNSPHead

        super().__init__(config, **kwargs)
        self.mlm = TFBertMLMHead(config, input_embeddings=self.bert.embeddings, name="mlm___cls")
        self.nsp = TFBertNSPHead(config, name="nsp___cls")

    def call(self, features, training=False):
        outputs = self.encode(features, training)
        positions = features["masked_lm_positions"]
        # Gather first: the transform and the [H, V] projection then see B*P rows, not B*S.
        gathered = tf.gather(outputs.last_hidden_state, positions, batch_dims=1)
        mlm_logits = tf.cast(self.mlm(gathered, training=training), tf.float32)
        nsp_logits = tf.cast(self.nsp(outputs.pooler_output, training=training), tf.float32)
        return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}

    def dummy_features(self, batch_size=2, seq_length=8):
        features = super().dummy_features(batch_size, seq_length)
        features["masked_lm_positions"] = tf.zeros((batch_size, 2), tf.int32)
        return features

    @staticmethod
    def _mlm_token_losses(features, outputs):
        labels = tf.cast(features["masked_lm_ids"], tf.int32)
        return tf_keras.losses.sparse_categorical_crossentropy(labels, outputs["mlm_logits"], from_logits=True)

    @staticmethod
    def _nsp_losses(features, outputs):
        labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
        return tf_keras.losses.sparse_categorical_crossentropy(labels, outputs["nsp_logits"], from_logits=True)

    def per_example_loss(self, features, outputs):
        weights = tf.cast(features["masked_lm_weights"], tf.float32)
        token_losses = self._mlm_token_losses(features, outputs)
        mlm = tf.reduce_sum(token_losses * weights, axis=-1) / tf.maximum(tf.reduce_sum(weights, axis=-1), 1.0)
        return mlm + self._nsp_losses(features, outputs)

    def train_metrics(self, features, outputs):
        weights = tf.cast(features["masked_lm_weights"], tf.float32)
        mlm_labels = tf.cast(features["masked_lm_ids"], tf.int32)
        nsp_labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
        mlm_correct = tf.cast(tf.equal(tf.argmax(outputs["mlm_logits"], -1, output_type=tf.int32), mlm_labels),
                              tf.float32)
        nsp_correct = tf.cast(tf.equal(tf.argmax(outputs["nsp_logits"], -1, output_type=tf.int32), nsp_labels),
                              tf.float32)
        # Token-level values weighted by masked_lm_weights: the Mean metric then averages over
        # real predictions across all batches and replicas.
        return {"mlm_loss": (self._mlm_token_losses(features, outputs), weights),
                "nsp_loss": (self._nsp_losses(features, outputs), None),
                "mlm_accuracy": (mlm_correct, weights),
                "nsp_accuracy": (nsp_correct, None)}
