"""The fine-tuning task protocol, after the TF Model Garden's Task: what ``jobs/finetune.run`` asks of
each task, and what export asks of a fine-tuned model directory's task.

A task is built from a job's flags (``Task(flags)``) or from a model directory's ``bert_tf.json``
(``Task.from_meta(meta)``: head and serving settings only, no flags). The job calls, in order:
``check_flags``; ``file`` for each split asked for; ``read`` (examples); ``resolve_labels`` (the
label list, checked against the training data); ``convert`` (records, cached); ``settle_head`` (head
size from the converted files, then ``check_head`` against a fine-tuned --init_checkpoint);
``check_scorable``; ``build_model``; ``feature_spec``; ``evaluate`` for each prediction pass;
``write_result_files`` beside each results file; ``meta`` for the saved model. Export and the
predictor use ``text_inputs``, ``serving_outputs``, ``serve_text`` and ``result``.
"""
import dataclasses

from bert_tf.errors import UserError

# The switch that asks for each split's file.
DO_FLAGS = {"train": "--do_train", "dev": "--do_eval", "test": "--do_predict"}


@dataclasses.dataclass
class Split:
    """One file of a run: its examples as read, then its records and conversion stats."""
    name: str  # train, dev or test
    examples: list
    sources: list  # the files read (hashed into the conversion cache key)
    source: str  # how messages name where the examples came from: the file, or the tfds data set
    stats: dict = dataclasses.field(default_factory=dict)
    records: str = None  # the converted records file
    windows: list = None  # what evaluation maps outputs back through (SQuAD's document windows)


class Task:
    """Base: a task without a label list, read from ``--<split>_file``. Subclasses set the class
    attributes and implement ``read``, ``convert``, ``build_model``, ``feature_spec``, ``evaluate``, ``meta``."""

    name = None  # bert_tf.json's "task"
    stored_names = ()  # bert_tf.json "task" values of fine-tuned heads this task's model can continue from
    count_key = "num_examples"  # the conversion stat counting records (training steps, progress bars)
    sequence_keys = ()  # features trimmed to each length bucket (none: no bucketing)
    keep_features = ()  # features evaluation reads back beside the model's outputs
    label_word = None  # "label"/"tag" when the head is sized by a label list checked against the training data
    trained_by = "bert_tf"  # what fine-tunes such a checkpoint, for the unknown-label-set message
    evaluation_writes_files = False  # each evaluation rewrites prediction files (so none is reused)
    file_alternative = ""  # another flag naming the dev/test file, for the missing-file message
    text_inputs = None  # serving_default's string inputs; None: no serving signature

    def __init__(self, flags=None):
        self.flags = flags
        self.labels = None

    @classmethod
    def from_meta(cls, meta):
        """The task of a model directory, from its ``bert_tf.json``."""
        task = cls()
        task.labels = meta.get("labels")
        return task

    # -- job side ----------------------------------------------------------------------------------

    @property
    def report_kind(self):
        """The task the data report (data/report.py) reads the files as."""
        return self.name

    def check_flags(self):
        """Task-specific flag checks, before any TensorFlow work."""

    def file(self, split):
        """The path of ``split``'s file; the one message for a missing file flag."""
        path = getattr(self.flags, f"{split}_file", None) or self.fallback_file(split)
        if not path:
            alternative = self.file_alternative if split != "train" else ""
            raise UserError(f"--{split}_file is required with {DO_FLAGS[split]}{alternative}")
        return path

    def fallback_file(self, split):
        return None

    def default_labels(self):
        return None

    def labels_of(self, examples):
        """The training data's label set, in id order."""
        raise NotImplementedError

    def gold_labels(self, examples):
        """Every label the training examples use."""
        raise NotImplementedError

    def check_training_labels(self, examples):
        """Checks of the training labels a task without a label list still has (regression's numbers)."""

    def resolve_labels(self, init_meta, train):
        """The one label-list resolution: --labels (or the task's own), else, when not training, the
        fine-tuned --init_checkpoint's, else the training data's; the training labels must be in it."""
        given = getattr(self.flags, "labels", None)
        labels = list(given) if given else self.default_labels()
        if init_meta and init_meta.get("task") in self.stored_names and not self.flags.do_train:
            labels = labels or init_meta.get("labels")
        if train is not None:
            self.check_training_labels(train.examples)
        if self.label_word:
            word = self.label_word
            if train is not None:
                labels = labels or self.labels_of(train.examples)
                unknown = sorted(self.gold_labels(train.examples) - set(labels))
                if unknown:
                    raise UserError(f"training {word}s {unknown[:5]} are not in --labels {labels}: add them")
                if len(labels) < 2:
                    raise UserError(f"the training data has one {word} ({labels}): {self.name} needs two or more")
            if not labels:
                raise UserError(f"the {word} set is unknown: pass --labels, or an --init_checkpoint fine-tuned by "
                                f"{self.trained_by}")
        self.labels = labels

    def settle_head(self, splits, init_meta):
        """Fixes what the data decides about the head, then checks a fine-tuned --init_checkpoint's."""
        self.check_head(init_meta)

    def check_head(self, init_meta):
        """The one head check: a fine-tuned --init_checkpoint's head fits only the head this run builds
        (other tasks' heads are left to the loader, which compares variable shapes)."""
        if init_meta and init_meta.get("task") in self.stored_names:
            problem = self.head_mismatch(init_meta)
            if problem:
                raise UserError(problem)

    def head_mismatch(self, init_meta):
        """Why a head this task stored does not fit this run (None: it fits)."""
        return None

    def num_labelled(self, split):
        """Gold labels in ``split`` to score, or None when it is not scored (or needs no check)."""
        return None

    def check_scorable(self, split):
        """Refuses an evaluation that could only report a vacuous score: no examples, or no gold label
        in the model's label set."""
        num_labelled = self.num_labelled(split)
        if num_labelled is None:
            return
        stats, flag = split.stats, f"--{split.name}_file"
        if not stats["num_examples"]:
            raise UserError(f"{flag} {split.source} has no examples to score: pass a file with labelled examples")
        if self.label_word and num_labelled and stats.get("unseen_labels", 0) >= num_labelled:
            raise UserError(f"no label of {flag} {split.source} is one the model predicts (its labels include "
                            f"{stats['unseen_label_values'][:5]}; the model's: {list(self.labels)[:20]}): evaluate "
                            "on data with the trained labels, or train with these")

    def write_result_files(self, output_dir, split, result):
        """Files beside a results JSON (the chief writes them)."""

    # -- serving side ------------------------------------------------------------------------------

    def setup_serving(self, module):
        """Adds what the task's signatures need to the serving module (lookup tables)."""

    def serving_outputs(self, module, outputs, features):
        raise NotImplementedError

    def serve_text(self, module, *texts):
        raise NotImplementedError
