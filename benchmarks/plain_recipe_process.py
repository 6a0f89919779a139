"""The plain Keras recipe (``quality_recipes.run_plain``) on one task, alone in its own process so
that a caller can time it whole: ``python -m benchmarks.plain_recipe_process SPEC`` prints one JSON
line, ``{"metric": ..., "train_seconds": ...}``.

SPEC is a JSON object: ``task`` (``classification`` or ``regression``, as in
``quality_recipes.TASKS``), ``train`` and ``test`` (TSV files), ``init_dir`` (an encoder-only
Hugging Face directory), ``seed``, and the settings ``run_plain`` reads: ``max_seq_length``,
``train_batch_size``, ``learning_rate``, ``num_train_epochs``.
"""
import json
import sys

from benchmarks.quality import task_examples
from benchmarks.quality_recipes import run_plain


def main(spec):
    train_texts, train_labels = task_examples(spec["task"], spec["train"])
    test_texts, test_labels = task_examples(spec["task"], spec["test"])
    data = (train_texts, train_labels, test_texts, test_labels, sorted(set(train_labels)))
    metric, train_seconds = run_plain(spec["task"], spec["seed"], spec, data, spec["init_dir"])
    return {"metric": float(metric), "train_seconds": train_seconds}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
