"""Extractive question answering on SQuAD v1.1/v2.0 JSON: questions and contexts in, cut into
overlapping document windows; start/end logits per word piece; the best span per question, exact
match and F1, and predictions/n-best JSON files out."""
import tensorflow as tf

from bert_tf.data import squad as data
from bert_tf.errors import warn
from bert_tf.modeling.tasks import SpanQA
from bert_tf.tasks.base import Split, Task
from bert_tf.tokenization import truncated_lengths
from bert_tf.training import metrics

DEFAULT_MAX_QUERY_LENGTH = 64
DEFAULT_MAX_ANSWER_LENGTH = 30


class SquadTask(Task):
    name = "squad"
    stored_names = ("squad",)
    count_key = "num_windows"
    file_alternative = " (or --predict_file)"
    # predictions.json is rewritten by every evaluation.
    evaluation_writes_files = True
    text_inputs = ("question", "context")

    def __init__(self, flags=None):
        super().__init__(flags)
        self.max_query_length = flags.max_query_length if flags else DEFAULT_MAX_QUERY_LENGTH
        self.max_answer_length = flags.max_answer_length if flags else DEFAULT_MAX_ANSWER_LENGTH

    @classmethod
    def from_meta(cls, meta):
        task = super().from_meta(meta)
        task.max_query_length = meta.get("max_query_length", DEFAULT_MAX_QUERY_LENGTH)
        task.max_answer_length = meta.get("max_answer_length", DEFAULT_MAX_ANSWER_LENGTH)
        return task

    # -- job side ----------------------------------------------------------------------------------

    def fallback_file(self, split):
        return self.flags.predict_file if split != "train" else None

    def window_settings(self):
        return {"max_seq_length": self.flags.max_seq_length, "doc_stride": self.flags.doc_stride,
                "max_query_length": self.flags.max_query_length}

    def read(self, split):
        path = self.file(split)
        examples, skipped = data.read_squad(path, split == "train", self.flags.version_2_with_negative,
                                           encoding=self.flags.encoding)
        return Split(split, examples, [path], path, stats={"skipped_mismatched_answers": skipped})

    def convert(self, split, tokenizer, cache_dir):
        flags, is_training = self.flags, split.name == "train"
        split.windows, stats = data.convert_examples(split.examples, tokenizer, flags.max_seq_length,
                                                     flags.doc_stride, flags.max_query_length, is_training)
        skipped = split.stats["skipped_mismatched_answers"]
        if flags.verbose_logging:
            for count, what in ((skipped, "training answers skipped: their text is not at answer_start"),
                                (stats.get("truncated_questions", 0), f"questions cut to {flags.max_query_length} "
                                                                      "word pieces")):
                if count:
                    warn(f"{split.source}: {count} {what}")
        path, _ = data.cached_records(split.windows, stats, split.sources, cache_dir, split.name,
                                      tokenizer, dict(self.window_settings(), training=is_training,
                                                      v2=flags.version_2_with_negative))
        return path, stats

    def build_model(self, config):
        return SpanQA(config)

    def feature_spec(self):
        return data.feature_spec(self.flags.max_seq_length)

    def evaluate(self, split, outputs):
        """(exact match and F1, or None for a file without answers, {prediction file: JSON})."""
        flags = self.flags
        examples = split.examples
        predictions, nbest, null_odds = data.decode(
            examples, split.windows, outputs["start_logits"], outputs["end_logits"], flags.n_best_size,
            flags.max_answer_length, flags.version_2_with_negative, flags.null_score_diff_threshold)
        # google-research/bert names its --predict_file output predictions.json; a --test_file's get test_.
        prefix = "test_" if split.name == "test" and flags.test_file else ""
        files = {f"{prefix}predictions.json": predictions, f"{prefix}nbest_predictions.json": nbest}
        if flags.version_2_with_negative:
            files[f"{prefix}null_odds.json"] = null_odds
        gold = {e.qas_id: e.answers for e in examples}
        if not any(gold.values()) and not flags.version_2_with_negative:
            return None, files  # a file without answers: predictions only
        result = metrics.squad_metrics(gold, predictions)
        result.update(num_windows=split.stats["num_windows"], truncated_questions=split.stats["truncated_questions"])
        return result, files

    def meta(self):
        return {"task": self.name, "max_answer_length": self.flags.max_answer_length,
                "version_2_with_negative": self.flags.version_2_with_negative, **self.window_settings()}

    # -- serving side ------------------------------------------------------------------------------

    def serving_outputs(self, module, outputs, features):
        # The answer must lie in the context (the second segment).
        start, end, score = best_spans(outputs["start_logits"], outputs["end_logits"],
                                       module.content(features) & (features["token_type_ids"] == 1),
                                       self.max_answer_length)
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"],
                "start_position": start, "end_position": end, "score": score,
                "no_answer_score": outputs["start_logits"][:, 0] + outputs["end_logits"][:, 0]}

    def serve_text(self, module, question, context):
        tokenizer = module.tokenizer
        with tf.control_dependencies([module.same_batch(question, context, self.text_inputs)]):
            question = tf.identity(question)
        query = tokenizer.word_pieces(question)
        query = tokenizer.keep_first(query, tf.minimum(query.row_lengths(), self.max_query_length))
        words, pieces, word_of_piece = module.words(context)
        keep_query, keep_context = truncated_lengths(query.row_lengths(), pieces.row_lengths(),
                                                     tf.constant(tokenizer.max_seq_length - 3, tf.int64))
        query = tokenizer.keep_first(query, keep_query)
        pieces = tokenizer.keep_first(pieces, keep_context)
        word_of_piece = tokenizer.keep_first(word_of_piece, keep_context)
        features = tokenizer.pack([query, pieces], pad_to_longest=True)
        outputs = module.run_ids(**features)
        # Word index of every position: -1 on [CLS], the question and [SEP]s.
        batch = tf.shape(question)[0]
        edge = -tf.ones([batch, 1], tf.int64)
        word_index = module.pad_positions(tf.concat([edge, -tf.ones_like(query), edge, word_of_piece], axis=1),
                                          features)
        first = tf.gather(word_index, outputs["start_position"], batch_dims=1)
        last = tf.gather(word_index, outputs["end_position"], batch_dims=1)
        words = tf.concat([words.to_tensor(""), tf.fill([batch, 1], "")], axis=1)  # never zero columns
        span = first[:, tf.newaxis] + tf.range(self.max_answer_length, dtype=tf.int64)[tf.newaxis]
        picked = tf.gather(words, tf.minimum(tf.maximum(span, 0), tf.cast(tf.shape(words)[1] - 1, tf.int64)),
                           batch_dims=1)
        inside = (first[:, tf.newaxis] >= 0) & (span <= last[:, tf.newaxis])
        outputs["answer"] = tf.strings.reduce_join(tf.ragged.boolean_mask(picked, inside), axis=1, separator=" ")
        return outputs

    def result(self, outputs, j, row):
        """One input's entry of ``bert_tf.Predictor.predict``."""
        answer = outputs["answer"][j]
        return {"answer": answer.decode("utf-8") if isinstance(answer, bytes) else str(answer),
                "score": float(outputs["score"][j]), "no_answer_score": float(outputs["no_answer_score"][j]),
                "start_position": int(outputs["start_position"][j]), "end_position": int(outputs["end_position"][j])}


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
