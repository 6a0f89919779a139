"""The two recipes a quality cell runs (benchmarks/quality.py): the plain Keras recipe
(``TFBertForSequenceClassification`` / ``TFBertForTokenClassification``, their own losses, Keras
``fit``) and bert_tf's job with one cell's switches, on the tasks and cells below.
"""
import os
import shutil
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf.data.tagging import IGNORE_LABEL
from bert_tf.jobs import classifier, finetune, tagger
from bert_tf.training import metrics
from benchmarks.finetune import _minilm

# Task -> the job, its data (under the repository), the test metric and the job's own extra flags.
TASKS = {
    "classification": {"job": "classifier", "train": "data/sentiment/train.tsv", "test": "data/sentiment/test.tsv",
                       "metric": "accuracy", "flags": []},
    "regression": {"job": "classifier", "train": "data/regression/train.tsv", "test": "data/regression/test.tsv",
                   "metric": "pearson", "flags": ["--task_type=regression"]},
    "tagging": {"job": "tagger", "train": "data/pos/train.conll", "test": "data/pos/test.conll",
                "metric": "token_accuracy", "flags": []},
}
# The paper recipe's choices (--recipe=bert) and the flag that switches each to the plain recipe's.
SWITCHES = {
    "constant_rate": ["--lr_schedule=constant"],  # the 10% warmup kept, no decay after it
    "no_buckets": ["--length_buckets="],  # every example padded to max_seq_length: batches mix lengths
    "no_warmup": ["--warmup_proportion=0"],  # linear decay kept, from the peak at step 0
    "no_clipping": ["--clip_norm=0"],
    "no_weight_decay": ["--weight_decay=0"],
}
# The recipes the ablation starts from: the defaults (--recipe=fast, whose schedule is already the
# constant rate) and google-research/bert's; each of their cells changes one choice at a time.
BERT_RECIPE = "bert_recipe"
_ON_DEFAULTS = {f"fast_{name}": switch for name, switch in SWITCHES.items() if name != "constant_rate"}
CELLS = {"bert_tf": [],  # the jobs' defaults (--recipe=fast)
         **_ON_DEFAULTS,
         "fast_all_plain": [f for switch in _ON_DEFAULTS.values() for f in switch],
         "fast_group_by_length": ["--group_by_length"],  # batches of one bucket, as before 2026-11-30
         # Random batches packed several examples to a row (run_classifier only: not the tagging task).
         "fast_pack_sequences": ["--pack_sequences"],
         # Keras' Adam epsilon (the plain recipe's) alone, then with every other optimizer choice of
         # the plain recipe (batches as the defaults make them: random, cut to their longest example).
         "fast_keras_epsilon": ["--adam_epsilon=1e-7"],
         "fast_plain_optimizer": ["--warmup_proportion=0", "--clip_norm=0", "--weight_decay=0",
                                  "--adam_epsilon=1e-7", "--head_lr_multiplier=1"],
         # The randomly initialised head at other multiples of the encoder's rate (the defaults: 10;
         # 1 is the plain recipe's single rate).
         **{f"fast_head_lr_{m}": [f"--head_lr_multiplier={m}"] for m in (1, 3, 30)},
         BERT_RECIPE: ["--recipe=bert"],
         **{name: ["--recipe=bert", *switch] for name, switch in SWITCHES.items()},
         "all_plain": ["--recipe=bert", *[f for switch in SWITCHES.values() for f in switch]]}
PLAIN = "plain"


def _tokenizer():
    from transformers import BertTokenizerFast

    return BertTokenizerFast(os.path.join(_minilm(), "vocab.txt"), do_lower_case=True)


def wordpiece_lengths(task, texts, max_seq_length):
    """Unpadded wordpiece lengths ([CLS] and [SEP] included, cut at max_seq_length)."""
    split = TASKS[task]["job"] == "tagger"
    encoded = _tokenizer()(texts, is_split_into_words=split, truncation=True, max_length=max_seq_length)
    return [len(ids) for ids in encoded["input_ids"]]


def _plain_inputs(task, texts, labels, label_list, max_seq_length):
    """Padded ids and the labels the Hugging Face model's own loss reads (tags on each word's first piece)."""
    tagging = TASKS[task]["job"] == "tagger"
    encoded = _tokenizer()(texts, is_split_into_words=tagging, truncation=True, padding="max_length",
                           max_length=max_seq_length, return_tensors="np")
    inputs = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    if task == "regression":
        return inputs, np.array([float(v) for v in labels], np.float32), None
    if not tagging:
        index = {label: i for i, label in enumerate(label_list)}
        return inputs, np.array([index[v] for v in labels], np.int32), None
    index = {tag: i for i, tag in enumerate(label_list)}
    label_ids = np.full(inputs["input_ids"].shape, IGNORE_LABEL, np.int32)
    first_pieces = []
    for row, tags in enumerate(labels):
        firsts, previous = {}, None
        for position, word in enumerate(encoded.word_ids(row)):
            if word is not None and word != previous:
                firsts[word] = position
                label_ids[row, position] = index.get(tags[word], IGNORE_LABEL)
            previous = word
        first_pieces.append(firsts)
    return inputs, label_ids, first_pieces


def _plain_metric(task, logits, labels, label_list, first_pieces):
    if task == "regression":
        return metrics.regression_metrics([float(v) for v in labels], logits.reshape(-1))["pearson"]
    if first_pieces is None:
        return float(np.mean(np.array(label_list)[logits.argmax(-1)] == np.array(labels)))
    # Words cut off by truncation get the first tag, as run_tagger's fallback for a tag set without 'O'.
    predicted = [[label_list[logits[row, firsts[w]].argmax()] if w in firsts else label_list[0]
                  for w in range(len(tags))] for row, (tags, firsts) in enumerate(zip(labels, first_pieces))]
    return metrics.token_accuracy(labels, predicted)


def run_plain(task, seed, settings, data, init_dir):
    """The Keras recipe on one task and seed -> (test metric, training seconds)."""
    import tensorflow as tf
    import tf_keras
    import transformers

    train_texts, train_labels, test_texts, test_labels, label_list = data
    inputs, labels, _ = _plain_inputs(task, train_texts, train_labels, label_list, settings["max_seq_length"])
    test_inputs, _, first_pieces = _plain_inputs(task, test_texts, test_labels, label_list,
                                                 settings["max_seq_length"])
    tf_keras.utils.set_random_seed(seed)
    tagging = TASKS[task]["job"] == "tagger"
    model_class = transformers.TFBertForTokenClassification if tagging else \
        transformers.TFBertForSequenceClassification
    model = model_class.from_pretrained(init_dir, num_labels=1 if task == "regression" else len(label_list))
    # No loss given: the model's own loss (cross-entropy skipping -100, or MSE for one output), as the recipe has it.
    model.compile(optimizer=tf_keras.optimizers.Adam(settings["learning_rate"]))
    train = tf.data.Dataset.from_tensor_slices(dict(inputs, labels=labels)).shuffle(
        len(labels), seed=seed).batch(settings["train_batch_size"])
    started = time.perf_counter()
    model.fit(train, epochs=settings["num_train_epochs"], verbose=0)
    train_seconds = time.perf_counter() - started
    logits = model.predict(test_inputs, batch_size=64, verbose=0).logits
    return _plain_metric(task, logits, test_labels, label_list, first_pieces), train_seconds


def run_bert_tf(task, cell, seed, settings, files, init_dir, work):
    """run_classifier / run_tagger in this process with the cell's flags -> (test metric, training
    seconds, padded length bounds or None)."""
    job = {"classifier": classifier, "tagger": tagger}[TASKS[task]["job"]]
    fv = absl_flags.FlagValues()
    job.define_flags(fv)
    output_dir = os.path.join(work, f"{task}-{cell}-{seed}")
    fv(["quality", f"--init_checkpoint={init_dir}", f"--train_file={files['train']}",
        f"--test_file={files['test']}", "--do_train", "--do_predict",
        f"--max_train_examples={settings['max_train_examples']}", f"--max_seq_length={settings['max_seq_length']}",
        f"--train_batch_size={settings['train_batch_size']}", f"--learning_rate={settings['learning_rate']}",
        f"--num_train_epochs={settings['num_train_epochs']}", f"--seed={seed}", f"--output_dir={output_dir}",
        f"--cache_dir={os.path.join(work, 'cache-' + task)}", "--log_steps=1000000",
        "--save_checkpoints_steps=1000000", *TASKS[task]["flags"], *CELLS[cell]])
    results = job.run(fv)
    bounds = finetune.length_buckets(fv)
    shutil.rmtree(output_dir, ignore_errors=True)  # each run saves a whole model: keep the disk free
    return results["test"][TASKS[task]["metric"]], results["train"]["train_seconds"], bounds

