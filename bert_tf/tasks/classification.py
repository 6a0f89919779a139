"""Sentence and sentence-pair classification and regression: files, GLUE/XNLI tasks or tfds in; a
softmax (or one score) over the [CLS] vector; accuracy/F1 (or correlations) and a predictions TSV out."""
import csv
import io
import os

import numpy as np
import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import classification as data
from bert_tf.data import glue
from bert_tf.errors import UserError
from bert_tf.modeling.tasks import SequenceClassifier
from bert_tf.tasks.base import Split, Task
from bert_tf.training import metrics

PREDICTIONS_FILE = "test_predictions.tsv"
# google-research/bert's predictions file of a --task_name run: one line per example, the class probabilities.
GOOGLE_RESULTS_FILE = "test_results.tsv"
PAIR_INPUTS = ("text", "text_pair")
# Requests of at least 2x this many texts run as this many sub-batches grouped by length.
LENGTH_GROUPS = 4


class ClassificationTask(Task):
    stored_names = ("classification", "regression")
    sequence_keys = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, flags=None):
        super().__init__(flags)
        self.glue = None  # the --task_name task
        self.regression = bool(flags and flags.task_type == "regression")
        self.text_pair = False

    @classmethod
    def from_meta(cls, meta):
        task = super().from_meta(meta)
        task.regression = meta.get("task") == "regression"
        task.text_pair = bool(meta.get("text_pair", False))
        return task

    @property
    def name(self):
        return "regression" if self.regression else "classification"

    @property
    def label_word(self):
        return None if self.regression else "label"

    @property
    def keep_features(self):
        return ("label_values",) if self.regression else ("label_ids",)

    @property
    def text_inputs(self):
        return PAIR_INPUTS if self.text_pair else ("text",)

    # -- job side ----------------------------------------------------------------------------------

    def check_flags(self):
        """The GLUE/XNLI task of --task_name; --data_dir must come with it, file flags must not."""
        flags = self.flags
        if not flags.task_name:
            if flags.data_dir:
                raise UserError("--data_dir is read only with --task_name: add --task_name (one of "
                                f"{', '.join(glue.TASKS)}), or pass --train_file/--dev_file/--test_file instead")
            return
        self.glue = glue.get_task(flags.task_name)
        if not flags.data_dir:
            raise UserError(f"--task_name={flags.task_name} needs --data_dir, the directory holding its files")
        given = [name for name in ("train_file", "dev_file", "test_file", "tfds_name") if getattr(flags, name)]
        if given:
            raise UserError(f"--task_name reads its files from --data_dir, so --{given[0]} would be ignored: drop one")
        if self.glue.regression and flags.task_type != "regression" and flags["task_type"].present:
            raise UserError(f"--task_name={flags.task_name} is a regression task: drop --task_type=classification")
        self.regression = self.regression or self.glue.regression

    @property
    def report_kind(self):
        return self.flags.task_type

    def file(self, split):
        return None if self.flags.task_name or self.flags.tfds_name else super().file(split)

    def source_settings(self):
        """How examples are read, for the conversion cache key (the examples themselves are hashed too)."""
        names = ("task_name", "tfds_name", "tfds_data_dir", "text_column", "text_pair_column", "label_column",
                 "encoding")
        return {name: getattr(self.flags, name, None) for name in names}

    def read(self, split):
        flags = self.flags
        if flags.task_name:
            (examples, skipped) = glue.read_examples(flags.task_name, flags.data_dir, split)
            sources = [glue.split_path(flags.task_name, flags.data_dir, split)]
        elif flags.tfds_name:
            tfds_split = {"train": "train", "dev": "validation", "test": "test"}[split]
            examples, skipped = data.read_tfds_examples(flags.tfds_name, tfds_split, flags.tfds_data_dir,
                                                        flags.text_column, flags.text_pair_column, flags.label_column)
            sources = []
        else:
            path = self.file(split)
            examples, skipped = data.read_examples(path, flags.text_column, flags.text_pair_column,
                                                   flags.label_column, require_label=split != "test",
                                                   encoding=flags.encoding)
            sources = [path]
        return Split(split, examples, sources, sources[0] if sources else flags.tfds_name,
                     stats={"skipped_empty": skipped})

    def default_labels(self):
        return list(self.glue.labels) if self.glue and self.glue.labels else None

    def labels_of(self, examples):
        return data.label_list_from(examples)

    def gold_labels(self, examples):
        return {e.label for e in examples}

    def check_training_labels(self, examples):
        if self.regression:
            for example in examples:
                data.float_label(example)  # a word where a number belongs stops the run before any write

    def convert(self, split, tokenizer, cache_dir):
        return data.cached_records(split.examples, split.sources, cache_dir, split.name, tokenizer,
                                   self.flags.max_seq_length, self.labels, self.regression,
                                   source=self.source_settings())

    def head_mismatch(self, init_meta):
        stored = init_meta.get("labels")
        if self.regression != (init_meta["task"] == "regression") or \
                (not self.regression and stored and stored != self.labels):
            return (f"--init_checkpoint was fine-tuned for {init_meta['task']} with labels {stored}, but this run has "
                    f"{'regression' if self.regression else self.labels}: start from the pretrained model instead, "
                    "or pass --labels in the checkpoint's order")
        return None

    def num_labelled(self, split):
        if split.name == "test" and not all(e.label for e in split.examples):
            return None
        return split.stats["num_examples"]

    def build_model(self, config):
        return SequenceClassifier(config, num_labels=1 if self.regression else len(self.labels),
                                  regression=self.regression)

    def feature_spec(self):
        return data.feature_spec(self.flags.max_seq_length, self.regression)

    def evaluate(self, split, outputs):
        """(scores or None when the split is unlabelled, {prediction file: text})."""
        files = {}
        if split.name == "test":
            files[PREDICTIONS_FILE] = self._predictions_tsv(split.examples, outputs)
            if self.flags.task_name and not self.regression:
                files[GOOGLE_RESULTS_FILE] = "".join("\t".join(f"{p:.8f}" for p in row) + "\n"
                                                     for row in outputs["probabilities"])
        labelled = split.name != "test" or all(e.label for e in split.examples)
        return (self._score(outputs, split.stats) if labelled else None), files

    def _score(self, outputs, stats):
        if self.regression:
            result = metrics.regression_metrics(outputs["label_values"].reshape(-1), outputs["score"])
        else:
            gold = outputs["label_ids"].reshape(-1)
            known = gold >= 0
            predicted = outputs["logits"].argmax(-1)
            result = metrics.classification_metrics(gold[known], predicted[known], len(self.labels))
            # The mean cross-entropy: google-research/bert's eval_loss.
            probabilities = np.clip(outputs["probabilities"][known][np.arange(int(known.sum())), gold[known]], 1e-12, 1)
            result["loss"] = float(-np.log(probabilities).mean()) if known.any() else None
            result["confusion_matrix"] = metrics.confusion_matrix(gold[known], predicted[known],
                                                                  len(self.labels)).tolist()
            result["unseen_labels"] = stats.get("unseen_labels", 0)
            if stats.get("unseen_labels"):
                result["unseen_label_values"] = stats["unseen_label_values"]
        result["truncated"] = stats.get("truncated", 0)
        result["skipped_empty"] = stats.get("skipped_empty", 0)
        return result

    def _predictions_tsv(self, examples, outputs):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        if self.regression:
            writer.writerow(["text", "gold", "predicted"])
            for example, score in zip(examples, outputs["score"]):
                writer.writerow([example.text, example.label or "", f"{score:.6f}"])
        else:
            writer.writerow(["text", "gold", "predicted", "probability"])
            for example, probabilities in zip(examples, outputs["probabilities"]):
                best = int(np.argmax(probabilities))
                writer.writerow([example.text, example.label or "", self.labels[best], f"{probabilities[best]:.6f}"])
        return buffer.getvalue()

    def write_result_files(self, output_dir, split, result):
        """A classification report and confusion-matrix PNG beside the results JSON."""
        if "confusion_matrix" in result:
            matrix = np.array(result["confusion_matrix"])
            fileio.write_text(os.path.join(output_dir, f"{split}_classification_report.txt"),
                              metrics.classification_report(matrix, self.labels))
            metrics.save_confusion_matrix_png(matrix, self.labels, os.path.join(output_dir,
                                                                                f"{split}_confusion_matrix.png"),
                                              title=f"{split} confusion matrix")

    def meta(self):
        return {"task": self.name, "labels": self.labels, "max_seq_length": self.flags.max_seq_length,
                "text_pair": bool(self.glue.pairs if self.glue else self.flags.text_pair_column)}

    # -- serving side ------------------------------------------------------------------------------

    def serving_outputs(self, module, outputs, features):
        if self.regression:
            return {"score": outputs["score"]}
        probabilities = outputs["probabilities"]
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"logits": outputs["logits"], "probabilities": probabilities, "label_id": label_id,
                "label": tf.gather(module.labels, label_id)}

    def serve_text(self, module, text, text_pair=None):
        if text_pair is not None:
            with tf.control_dependencies([module.same_batch(text, text_pair, PAIR_INPUTS)]):
                text = tf.identity(text)
        ids, type_ids = module.tokenizer.combine(module.tokenizer.segments(text, text_pair))
        return tf.cond(ids.nrows() >= 2 * LENGTH_GROUPS, lambda: _run_grouped(module, ids, type_ids),
                       lambda: module.run_ids(**module.tokenizer.pad(ids, type_ids, pad_to_longest=True)))

    def result(self, outputs, j, row):
        """One input's entry of ``bert_tf.Predictor.predict``."""
        if self.regression:
            return {"score": float(outputs["score"][j])}
        probabilities = [float(p) for p in outputs["probabilities"][j]]
        best = int(np.argmax(probabilities))
        labels = list(self.labels or [])
        return {"label": labels[best], "score": probabilities[best], "scores": dict(zip(labels, probabilities))}


def _run_grouped(module, ids, type_ids):
    """Runs a large request as LENGTH_GROUPS sub-batches of similar length, each padded to its own
    longest row, then restores the request's order: less compute spent on padding."""
    order = tf.argsort(ids.row_lengths(), stable=True)
    size = (ids.nrows() + LENGTH_GROUPS - 1) // LENGTH_GROUPS
    parts = []
    for group in range(LENGTH_GROUPS):
        rows = order[group * size:(group + 1) * size]
        parts.append(module.run_ids(**module.tokenizer.pad(tf.gather(ids, rows), tf.gather(type_ids, rows),
                                                           pad_to_longest=True)))
    inverse = tf.math.invert_permutation(tf.cast(order, tf.int32))
    return {name: tf.gather(tf.concat([part[name] for part in parts], axis=0), inverse) for name in parts[0]}
