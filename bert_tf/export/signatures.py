"""Serving signatures: raw text in (``serving_default``) and token ids in (``serve_ids``); each task's
post-processing and text signature come from its class in bert_tf/tasks/.

The module built here holds the model, the in-graph tokenizer and the label names; once saved
it needs only TensorFlow and TensorFlow Text to load and run (no bert_tf, no transformers).

Signatures by task (every output has the batch as its first dimension, as TF Serving wants;
``L`` is the longest example of the request after tokenization, at most ``max_seq_length``:
the text signatures pad to it rather than to ``max_seq_length``, so short requests run fast):

* classification: ``logits`` [B, C], ``probabilities`` [B, C], ``label_id`` [B], ``label`` [B].
* regression: ``score`` [B].
* tagging: per word piece (aligned to ``input_ids`` positions, [CLS] at 0): ``logits`` and
  ``probabilities`` [B, L, T], ``tag_id`` and ``tag`` [B, L] (empty tag on [CLS]/[SEP]/padding),
  ``token`` [B, L] (the word piece); the text signature adds ``word_start`` [B, L] (1 on the first
  piece of each whitespace-separated word) and ``word_index`` [B, L] (that word's index, -1 off words).
* squad: ``start_logits``, ``end_logits`` [B, L], and the best span within the window
  (``start_position``, ``end_position`` [B], ``score`` [B], ``no_answer_score`` [B]); the text
  signature (``question`` + ``context``) adds ``answer`` [B], the context words the span covers.
"""
import functools
import types

import tensorflow as tf

from bert_tf.modeling import lora
from bert_tf.export.graph_tokenizer import GraphTokenizer

IDS_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name=n)
                 for n in ("input_ids", "attention_mask", "token_type_ids")]


class ServingModule(tf.Module):
    """Wraps a task model with its tokenizer; the task (bert_tf/tasks/) adds its post-processing and
    raw-text signature."""

    def __init__(self, model, task, vocab_file, do_lower_case, max_seq_length, float16_weights=None):
        super().__init__(name="bert_tf_serving")
        if not task.text_inputs:  # rejects tasks without signatures before anything is traced
            raise ValueError(f"no serving signature for task {task.name!r}")
        lora.merge_lora(model)  # a live LoRA model exports as plain dense kernels (no-op otherwise)
        # The Keras model and the task stay untracked (saving would trace all the model's Keras call
        # functions, slowly, for nothing); the model's variables are tracked so the signatures can capture them.
        self._keras = types.SimpleNamespace(model=model, task=task)
        self.float16_weights = float16_weights  # quantize.Float16Weights, which then holds the variables
        self.model_variables = [] if float16_weights else list(model.weights)
        self.tokenizer = GraphTokenizer(vocab_file, do_lower_case, max_seq_length)
        self.labels = tf.constant(task.labels or [""], tf.string)
        task.setup_serving(self)

    @property
    def task(self):
        return self._keras.task

    @property
    def text_inputs(self):
        """Names of the string inputs ``serving_default`` takes."""
        return tuple(self.task.text_inputs)

    # -- model + post-processing on ids ------------------------------------------------------------

    def _run_model(self, input_ids, attention_mask, token_type_ids):
        features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if self.float16_weights is not None:
            with tf.control_dependencies([self.float16_weights.materialize()]):
                return self._keras.model(features, training=False)
        return self._keras.model(features, training=False)

    def run_ids(self, input_ids, attention_mask, token_type_ids):
        outputs = self._run_model(input_ids, attention_mask, token_type_ids)
        features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.task.serving_outputs(self, outputs, features)

    def content(self, features):
        """Positions holding text: not padding, [CLS] or [SEP]."""
        input_ids = features["input_ids"]
        return (features["attention_mask"] > 0) & (input_ids != self.tokenizer.cls_id) & \
            (input_ids != self.tokenizer.sep_id)

    # -- raw text in: helpers the tasks' text signatures share --------------------------------------

    @staticmethod
    def pad_positions(ragged, features):
        """Per-position values (-1 on padding) as wide as the packed ``features``."""
        return ragged.to_tensor(default_value=-1, shape=tf.shape(features["input_ids"], out_type=tf.int64))

    def words(self, text):
        """Whitespace words of ``text`` and, per kept piece position, the index of its word."""
        words, pieces = self.tokenizer.pieces_by_word(text)
        flat = pieces.merge_dims(1, 2)
        # pieces.values holds one row per word of the whole batch; number words within their text.
        word_of_piece = flat.with_flat_values(
            tf.gather(tf.ragged.range(pieces.row_lengths()).flat_values, pieces.values.value_rowids()))
        return words, flat, word_of_piece

    @staticmethod
    def same_batch(first, second, names):
        return tf.debugging.assert_equal(tf.size(first), tf.size(second),
                                         message=f"{names[0]} and {names[1]} must have one entry per example")

    def text_function(self):
        """The raw-text signature (``serving_default``) as a concrete tf.function."""
        specs = [tf.TensorSpec([None], tf.string, name=n) for n in self.text_inputs]
        # The task's own argument names (text, text_pair; question, context) name the signature's inputs.
        serve_text = functools.partial(self.task.serve_text, self)
        return tf.function(serve_text, input_signature=specs).get_concrete_function()

    def signatures(self):
        """{'serving_default': text in, 'serve_ids': ids in} as concrete tf.functions."""
        return {"serving_default": self.text_function(),
                "serve_ids": tf.function(self.run_ids, input_signature=IDS_SIGNATURE).get_concrete_function()}
