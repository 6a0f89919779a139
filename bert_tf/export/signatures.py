"""Per-task serving signatures: raw text in (``serving_default``) and token ids in (``serve_ids``).

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
import types

import tensorflow as tf

from bert_tf.modeling import lora
from bert_tf.tokenization import GraphTokenizer, truncated_lengths

IDS_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name=n)
                 for n in ("input_ids", "attention_mask", "token_type_ids")]
TEXT_INPUTS = {
    "classification": ("text",), "regression": ("text",), "tagging": ("text",),
    "squad": ("question", "context"),
}
PAIR_INPUTS = ("text", "text_pair")
DEFAULT_MAX_QUERY_LENGTH = 64
DEFAULT_MAX_ANSWER_LENGTH = 30
# Requests of at least 2x this many texts (classification, regression) run as this many
# sub-batches grouped by length.
LENGTH_GROUPS = 4


def text_inputs(task, text_pair=False):
    """Names of the string inputs ``serving_default`` takes for a task."""
    if task not in TEXT_INPUTS:
        raise ValueError(f"no serving signature for task {task!r}")
    return PAIR_INPUTS if text_pair and task in ("classification", "regression") else TEXT_INPUTS[task]


def best_spans(start_logits, end_logits, allowed, max_answer_length):
    """Best (start, end, score) per row over spans with start <= end < start + max_answer_length
    whose two ends are both ``allowed``; rows with no allowed position get (0, 0, [CLS] score).
    """
    length = tf.shape(start_logits)[1]
    positions = tf.range(length)
    offset = positions[tf.newaxis, :] - positions[:, tf.newaxis]  # [start, end] -> end - start
    band = (offset >= 0) & (offset < max_answer_length)
    valid = band[tf.newaxis] & allowed[:, :, tf.newaxis] & allowed[:, tf.newaxis, :]
    scores = start_logits[:, :, tf.newaxis] + end_logits[:, tf.newaxis, :]
    flat_scores = tf.reshape(tf.where(valid, scores, tf.fill(tf.shape(scores), scores.dtype.min)),
                             [tf.shape(scores)[0], -1])
    best = tf.argmax(flat_scores, axis=-1, output_type=tf.int32)
    found = tf.reduce_any(allowed, axis=-1)
    null_score = start_logits[:, 0] + end_logits[:, 0]
    start = tf.where(found, best // length, 0)
    end = tf.where(found, best % length, 0)
    return start, end, tf.where(found, tf.reduce_max(flat_scores, axis=-1), null_score)


class ServingModule(tf.Module):
    """Wraps a task model with its tokenizer and head-specific post-processing."""

    def __init__(self, model, task, vocab_file, do_lower_case, max_seq_length, labels=None, text_pair=False,
                 max_query_length=DEFAULT_MAX_QUERY_LENGTH, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH,
                 float16_weights=None):
        super().__init__(name="bert_tf_serving")
        text_inputs(task)  # rejects tasks without signatures before anything is traced
        lora.merge_lora(model)  # a live LoRA model exports as plain dense kernels (no-op otherwise)
        # The Keras model itself stays untracked (saving would trace all its Keras call functions,
        # slowly, for nothing); its variables are tracked so the signatures can capture them.
        self._keras = types.SimpleNamespace(model=model)
        self.float16_weights = float16_weights  # quantize.Float16Weights, which then holds the variables
        self.model_variables = [] if float16_weights else list(model.weights)
        self.task = task
        self.text_pair = bool(text_pair) and task in ("classification", "regression")
        self.tokenizer = GraphTokenizer(vocab_file, do_lower_case, max_seq_length)
        self.labels = tf.constant(labels or [""], tf.string)
        self.max_query_length = max_query_length
        self.max_answer_length = max_answer_length
        if task == "tagging":
            # id -> word piece, from the same vocab asset (no second copy of the vocab in the graph).
            self.pieces = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                self.tokenizer.vocab_file, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE), default_value="[UNK]")

    # -- model + post-processing on ids ------------------------------------------------------------

    def _run_model(self, input_ids, attention_mask, token_type_ids):
        if self.float16_weights is not None:
            with tf.control_dependencies([self.float16_weights.materialize()]):
                return self._keras.model({"input_ids": input_ids, "attention_mask": attention_mask,
                                          "token_type_ids": token_type_ids}, training=False)
        return self._keras.model({"input_ids": input_ids, "attention_mask": attention_mask,
                           "token_type_ids": token_type_ids}, training=False)

    def run_ids(self, input_ids, attention_mask, token_type_ids):
        outputs = self._run_model(input_ids, attention_mask, token_type_ids)
        if self.task == "regression":
            return {"score": outputs["score"]}
        if self.task == "classification":
            probabilities = outputs["probabilities"]
            label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {"logits": outputs["logits"], "probabilities": probabilities, "label_id": label_id,
                    "label": tf.gather(self.labels, label_id)}
        content = (attention_mask > 0) & (input_ids != self.tokenizer.cls_id) & (input_ids != self.tokenizer.sep_id)
        if self.task == "tagging":
            probabilities = outputs["probabilities"]
            tag_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {"logits": outputs["logits"], "probabilities": probabilities, "tag_id": tag_id,
                    "tag": tf.where(content, tf.gather(self.labels, tag_id), ""),
                    "token": tf.where(attention_mask > 0, self.pieces.lookup(tf.cast(input_ids, tf.int64)), "")}
        # squad: the answer must lie in the context (the second segment).
        start, end, score = best_spans(outputs["start_logits"], outputs["end_logits"],
                                       content & (token_type_ids == 1), self.max_answer_length)
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"],
                "start_position": start, "end_position": end, "score": score,
                "no_answer_score": outputs["start_logits"][:, 0] + outputs["end_logits"][:, 0]}

    # -- raw text in -------------------------------------------------------------------------------

    @staticmethod
    def _pad(ragged, features):
        """Per-position values (-1 on padding) as wide as the packed ``features``."""
        return ragged.to_tensor(default_value=-1, shape=tf.shape(features["input_ids"], out_type=tf.int64))

    def _words(self, text):
        """Whitespace words of ``text`` and, per kept piece position, the index of its word."""
        words, pieces = self.tokenizer.pieces_by_word(text)
        flat = pieces.merge_dims(1, 2)
        # pieces.values holds one row per word of the whole batch; number words within their text.
        word_of_piece = flat.with_flat_values(
            tf.gather(tf.ragged.range(pieces.row_lengths()).flat_values, pieces.values.value_rowids()))
        return words, flat, word_of_piece

    @staticmethod
    def _same_batch(first, second, names):
        return tf.debugging.assert_equal(tf.size(first), tf.size(second),
                                         message=f"{names[0]} and {names[1]} must have one entry per example")

    def serve_text(self, text, text_pair=None):
        if text_pair is not None:
            with tf.control_dependencies([self._same_batch(text, text_pair, PAIR_INPUTS)]):
                text = tf.identity(text)
        ids, type_ids = self.tokenizer.combine(self.tokenizer.segments(text, text_pair))
        return tf.cond(ids.nrows() >= 2 * LENGTH_GROUPS, lambda: self._run_grouped(ids, type_ids),
                       lambda: self.run_ids(**self.tokenizer.pad(ids, type_ids, pad_to_longest=True)))

    def _run_grouped(self, ids, type_ids):
        """Runs a large request as LENGTH_GROUPS sub-batches of similar length, each padded to its own
        longest row, then restores the request's order: less compute spent on padding."""
        order = tf.argsort(ids.row_lengths(), stable=True)
        size = (ids.nrows() + LENGTH_GROUPS - 1) // LENGTH_GROUPS
        parts = []
        for group in range(LENGTH_GROUPS):
            rows = order[group * size:(group + 1) * size]
            parts.append(self.run_ids(**self.tokenizer.pad(tf.gather(ids, rows), tf.gather(type_ids, rows),
                                                           pad_to_longest=True)))
        inverse = tf.math.invert_permutation(tf.cast(order, tf.int32))
        return {name: tf.gather(tf.concat([part[name] for part in parts], axis=0), inverse) for name in parts[0]}

    def serve_tagging(self, text):
        _, pieces, word_of_piece = self._words(text)
        # Whole words only, as the tagger's training data is cut: a word that does not fit is dropped.
        budget = self.tokenizer.max_seq_length - 2
        cut_word = word_of_piece.to_tensor(default_value=tf.int64.max, shape=[None, budget + 1])[:, budget]
        keep = word_of_piece < cut_word[:, tf.newaxis]
        pieces, word_of_piece = tf.ragged.boolean_mask(pieces, keep), tf.ragged.boolean_mask(word_of_piece, keep)
        features = self.tokenizer.pack([pieces], pad_to_longest=True)
        outputs = self.run_ids(**features)
        edge = -tf.ones([tf.shape(text)[0], 1], tf.int64)
        word_index = self._pad(tf.concat([edge, word_of_piece, edge], axis=1), features)
        previous = tf.pad(word_index[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        outputs["word_index"] = tf.cast(word_index, tf.int32)
        outputs["word_start"] = tf.cast((word_index >= 0) & (word_index != previous), tf.int32)
        return outputs

    def serve_squad(self, question, context):
        with tf.control_dependencies([self._same_batch(question, context, TEXT_INPUTS["squad"])]):
            question = tf.identity(question)
        query = self.tokenizer.word_pieces(question)
        query = self.tokenizer.keep_first(query, tf.minimum(query.row_lengths(), self.max_query_length))
        words, pieces, word_of_piece = self._words(context)
        keep_query, keep_context = truncated_lengths(query.row_lengths(), pieces.row_lengths(),
                                                     tf.constant(self.tokenizer.max_seq_length - 3, tf.int64))
        query = self.tokenizer.keep_first(query, keep_query)
        pieces = self.tokenizer.keep_first(pieces, keep_context)
        word_of_piece = self.tokenizer.keep_first(word_of_piece, keep_context)
        features = self.tokenizer.pack([query, pieces], pad_to_longest=True)
        outputs = self.run_ids(**features)
        # Word index of every position: -1 on [CLS], the question and [SEP]s.
        batch = tf.shape(question)[0]
        edge = -tf.ones([batch, 1], tf.int64)
        word_index = self._pad(tf.concat([edge, -tf.ones_like(query), edge, word_of_piece], axis=1), features)
        first = tf.gather(word_index, outputs["start_position"], batch_dims=1)
        last = tf.gather(word_index, outputs["end_position"], batch_dims=1)
        words = tf.concat([words.to_tensor(""), tf.fill([batch, 1], "")], axis=1)  # never zero columns
        span = first[:, tf.newaxis] + tf.range(self.max_answer_length, dtype=tf.int64)[tf.newaxis]
        picked = tf.gather(words, tf.minimum(tf.maximum(span, 0), tf.cast(tf.shape(words)[1] - 1, tf.int64)),
                           batch_dims=1)
        inside = (first[:, tf.newaxis] >= 0) & (span <= last[:, tf.newaxis])
        outputs["answer"] = tf.strings.reduce_join(tf.ragged.boolean_mask(picked, inside), axis=1, separator=" ")
        return outputs

    def text_function(self):
        """The raw-text signature (``serving_default``) as a concrete tf.function."""
        names = text_inputs(self.task, self.text_pair)
        specs = [tf.TensorSpec([None], tf.string, name=n) for n in names]
        text_fn = {"tagging": self.serve_tagging, "squad": self.serve_squad}.get(self.task, self.serve_text)
        return tf.function(text_fn, input_signature=specs).get_concrete_function()

    def signatures(self):
        """{'serving_default': text in, 'serve_ids': ids in} as concrete tf.functions."""
        return {"serving_default": self.text_function(),
                "serve_ids": tf.function(self.run_ids, input_signature=IDS_SIGNATURE).get_concrete_function()}
