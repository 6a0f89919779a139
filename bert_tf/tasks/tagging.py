"""Token tagging (POS, NER, chunking): CoNLL files in; a softmax over tags at each word's first piece;
entity/tag scores and a CoNLL predictions file out."""
import copy

import numpy as np
import tensorflow as tf

from bert_tf.data import tagging as data
from bert_tf.modeling.tasks import TokenTagger
from bert_tf.tasks.base import Split, Task
from bert_tf.training import metrics

PREDICTIONS_FILE = "test_predictions.conll"


class TaggingTask(Task):
    name = "tagging"
    stored_names = ("tagging",)
    label_word = "tag"
    trained_by = "run_tagger"
    # Trimmed evaluation batches come back zero-padded to a common width; word_predictions reads only
    # each sentence's own word starts, which all lie before the cut.
    sequence_keys = data.SEQUENCE_KEYS
    keep_features = ("label_ids",)
    text_inputs = ("text",)

    # -- job side ----------------------------------------------------------------------------------

    def read(self, split):
        path = self.file(split)
        sentences = data.read_conll(path, require_tags=split != "test", encoding=self.flags.encoding)
        return Split(split, sentences, [path], path)

    def labels_of(self, examples):
        return data.label_list_from(examples)

    def gold_labels(self, examples):
        return {t for s in examples for t in s.tags}

    def convert(self, split, tokenizer, cache_dir):
        return data.cached_records(split.examples, split.sources, cache_dir, split.name, tokenizer,
                                   self.flags.max_seq_length, self.labels)

    def head_mismatch(self, init_meta):
        if init_meta.get("labels") and init_meta["labels"] != self.labels:
            return (f"--init_checkpoint was fine-tuned for tags {init_meta['labels']}, but this run has "
                    f"{self.labels}: start from the pretrained model instead, or pass --labels in the "
                    "checkpoint's order")
        return None

    def num_labelled(self, split):
        return sum(len(s.tags) for s in split.examples) if all(s.tags for s in split.examples) else None

    def build_model(self, config):
        # Tag names in config.json let Hugging Face pipelines loading the saved model print them.
        config = copy.deepcopy(config)
        config.id2label = dict(enumerate(self.labels))
        config.label2id = {tag: i for i, tag in enumerate(self.labels)}
        return TokenTagger(config, num_labels=len(self.labels))

    def feature_spec(self):
        return data.feature_spec(self.flags.max_seq_length)

    def evaluate(self, split, outputs):
        """(tag scores or None when the split is untagged, {prediction file: text})."""
        sentences = split.examples
        # Words cut off by truncation still need a prediction: the tag meaning "nothing" when there is one.
        fallback = "O" if "O" in self.labels else self.labels[0]
        predicted = data.word_predictions(outputs["label_ids"], outputs["logits"], self.labels,
                                          [len(s.words) for s in sentences], fallback)
        files = {PREDICTIONS_FILE: format_predictions(sentences, predicted)} if split.name == "test" else {}
        if not all(s.tags for s in sentences):
            return None, files
        result = metrics.tagging_metrics([s.tags for s in sentences], predicted, self.labels)
        stats = split.stats
        result.update({k: stats[k] for k in ("truncated", "truncated_words", "unseen_labels")})
        if stats["unseen_labels"]:
            result["unseen_label_values"] = stats["unseen_label_values"]
        return result, files

    def meta(self):
        return {"task": self.name, "labels": self.labels, "max_seq_length": self.flags.max_seq_length}

    # -- serving side ------------------------------------------------------------------------------

    def setup_serving(self, module):
        # id -> word piece, from the same vocab asset (no second copy of the vocab in the graph).
        module.pieces = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
            module.tokenizer.vocab_file, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE), default_value="[UNK]")

    def serving_outputs(self, module, outputs, features):
        probabilities = outputs["probabilities"]
        tag_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        mask = features["attention_mask"] > 0
        return {"logits": outputs["logits"], "probabilities": probabilities, "tag_id": tag_id,
                "tag": tf.where(module.content(features), tf.gather(module.labels, tag_id), ""),
                "token": tf.where(mask, module.pieces.lookup(tf.cast(features["input_ids"], tf.int64)), "")}

    def serve_text(self, module, text):
        _, pieces, word_of_piece = module.words(text)
        # Whole words only, as the tagger's training data is cut: a word that does not fit is dropped.
        budget = module.tokenizer.max_seq_length - 2
        cut_word = word_of_piece.to_tensor(default_value=tf.int64.max, shape=[None, budget + 1])[:, budget]
        keep = word_of_piece < cut_word[:, tf.newaxis]
        pieces, word_of_piece = tf.ragged.boolean_mask(pieces, keep), tf.ragged.boolean_mask(word_of_piece, keep)
        features = module.tokenizer.pack([pieces], pad_to_longest=True)
        outputs = module.run_ids(**features)
        edge = -tf.ones([tf.shape(text)[0], 1], tf.int64)
        word_index = module.pad_positions(tf.concat([edge, word_of_piece, edge], axis=1), features)
        previous = tf.pad(word_index[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        outputs["word_index"] = tf.cast(word_index, tf.int32)
        outputs["word_start"] = tf.cast((word_index >= 0) & (word_index != previous), tf.int32)
        return outputs

    def result(self, outputs, j, row):
        """One input's entry of ``bert_tf.Predictor.predict``: a tag and its probability per word."""
        words = row[0].split()
        tags, scores = [None] * len(words), [None] * len(words)
        for position in np.flatnonzero(outputs["word_start"][j]):
            word = int(outputs["word_index"][j][position])
            tag_id = int(outputs["tag_id"][j][position])
            tags[word] = self.labels[tag_id]
            scores[word] = float(outputs["probabilities"][j][position][tag_id])
        return {"words": words, "tags": tags, "scores": scores}


def format_predictions(sentences, predicted):
    """CoNLL text: token<TAB>gold<TAB>predicted (token<TAB>predicted without gold), blank line between."""
    lines = []
    for sentence, tags in zip(sentences, predicted):
        for index, (word, tag) in enumerate(zip(sentence.words, tags)):
            lines.append("\t".join([word, sentence.tags[index], tag] if sentence.tags else [word, tag]))
        lines.append("")
    return "\n".join(lines) + "\n"
