"""SWAG-style multiple choice: a context and N endings in; a score per (context, ending) pair, softmaxed
over the endings; accuracy and a predictions TSV out."""
import csv
import io

import numpy as np

from bert_tf.data import multiple_choice as data
from bert_tf.errors import UserError
from bert_tf.modeling.tasks import MultipleChoice
from bert_tf.tasks.base import Split, Task

PREDICTIONS_FILE = "test_predictions.tsv"


class MultipleChoiceTask(Task):
    name = "multiple_choice"
    stored_names = ("multiple_choice",)
    keep_features = ("label_ids",)

    def __init__(self, flags=None):
        super().__init__(flags)
        self.num_choices = None

    @classmethod
    def from_meta(cls, meta):
        task = super().from_meta(meta)
        task.num_choices = meta.get("num_choices")
        return task

    def read(self, split):
        path = self.file(split)
        flags = self.flags
        examples = data.read_examples(path, flags.context_column, flags.question_column, flags.label_column,
                                      split != "test", encoding=flags.encoding)
        return Split(split, examples, [path], path)

    def convert(self, split, tokenizer, cache_dir):
        return data.cached_records(split.examples, split.sources, cache_dir, split.name, tokenizer,
                                   self.flags.max_seq_length)

    def settle_head(self, splits, init_meta):
        """The number of choices, which every file (and a fine-tuned --init_checkpoint) must share."""
        counts = {len(split.examples[0].endings) for split in splits.values()}
        if len(counts) != 1:
            raise UserError(self._disagreement(counts))
        self.num_choices = counts.pop()
        super().settle_head(splits, init_meta)

    def head_mismatch(self, init_meta):
        if init_meta["num_choices"] != self.num_choices:
            return self._disagreement({self.num_choices, init_meta["num_choices"]})
        return None

    @staticmethod
    def _disagreement(counts):
        return (f"the files (and --init_checkpoint) disagree on the number of choices {sorted(counts)}: "
                "use one number of endings throughout")

    def build_model(self, config):
        return MultipleChoice(config, num_choices=self.num_choices)

    def feature_spec(self):
        return data.feature_spec(self.num_choices, self.flags.max_seq_length)

    def evaluate(self, split, outputs):
        """(accuracy over the labelled examples, or None when there are none, {prediction file: text})."""
        gold = outputs["label_ids"].reshape(-1)
        labelled = gold >= 0
        probabilities = outputs["probabilities"]
        predicted = probabilities.argmax(-1)
        result = None
        if labelled.any():
            result = {"accuracy": float(np.mean(gold[labelled] == predicted[labelled])),
                      "num_examples": int(labelled.sum()), "truncated": split.stats["truncated"]}
        files = {PREDICTIONS_FILE: _format_predictions(split.examples, probabilities)} if split.name == "test" else {}
        return result, files

    def meta(self):
        return {"task": self.name, "num_choices": self.num_choices, "max_seq_length": self.flags.max_seq_length}


def _format_predictions(examples, probabilities):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
    writer.writerow(["context", "gold", "predicted", "probability", "predicted_ending"])
    for example, row in zip(examples, probabilities):
        best = int(np.argmax(row))
        writer.writerow([example.context, "" if example.label is None else example.label, best, f"{row[best]:.6f}",
                         example.endings[best]])
    return buffer.getvalue()
