"""The user's whole flow with every path on a non-local TensorFlow filesystem, and object-store publication.

``ram://`` is TensorFlow's in-memory filesystem. It stands in for ``gs://`` here because it has
an object store's traits that break local-only code: no file of that name exists on the disk
(``open``, ``os.path`` and Hugging Face's ``save_pretrained`` fail or write a local folder named
``ram:``), and renaming a directory does not carry its files along. Unlike ``gs://`` it lives
inside one process, so:

* vocab -> records -> pretraining -> fine-tuning -> export all run in this test's process,
  through the same library entry points the tools' ``main`` functions call (each tool defines
  its flags in absl's global FLAGS, so several cannot share one process; ``FlagValues`` here
  parse the same flags);
* the last step copies the export version directory down to a local folder with
  ``fileio.copy_tree`` (what a TF Serving host does with a bucket's export) and loads it in a
  fresh process with ``tools/serving_client.py``; its predictions must equal those of the
  in-process load straight from ``ram://``.
"""
import json
import os
import subprocess
import uuid

import bert_tf  # noqa: F401
import pytest
import tensorflow as tf
from absl import flags

from bert_tf import fileio, tokenization
from bert_tf.export import client, exporter
from bert_tf.jobs import classifier, pretraining
from bert_tf.jobs import create_pretraining_data as pretraining_data
from bert_tf.modeling import checkpoints
from tests import workloads

SENTENCES = ["a gripping, beautifully acted film", "dull and far too long"]


def _parse(define, argv):
    values = flags.FlagValues()
    define(values)
    values(["test"] + argv)
    return values


def _put(local_path, remote_path):
    tf.io.gfile.makedirs(os.path.dirname(remote_path))
    tf.io.gfile.copy(local_path, remote_path, overwrite=True)
    return remote_path


@pytest.fixture(scope="module")
def ram_flow(tmp_path_factory):
    """Runs the flow once with every input and output on ram://; returns (root, results, local dir)."""
    local = tmp_path_factory.mktemp("cloud_flow")
    root = f"ram://flow-{uuid.uuid4().hex[:8]}"
    cwd = os.getcwd()
    # A local-only write of a ram:// path would create a folder named "ram:" here: checked below.
    os.chdir(local)
    try:
        corpus = _put(os.path.join(workloads.REPO, "data", "corpus", "sample.txt"), f"{root}/corpus/sample.txt")
        train = _put(workloads.small_tsv(local / "train.tsv", 64), f"{root}/glue/train.tsv")
        dev = _put(workloads.small_tsv(local / "dev.tsv", 32, offset=64), f"{root}/glue/dev.tsv")
        os.remove(local / "train.tsv")
        os.remove(local / "dev.tsv")
        fileio.write_json(f"{root}/bert_config.json", {"hidden_size": 64, "num_hidden_layers": 2,
                                                       "num_attention_heads": 2, "intermediate_size": 128,
                                                       "max_position_embeddings": 64})
        vocab = f"{root}/vocab/vocab.txt"
        tokenization.build_vocab(fileio.expand_inputs(f"{root}/corpus/*.txt"), vocab, vocab_size=1000)

        records = f"{root}/records/sample.tfrecord"
        pretraining_data.run(_parse(pretraining_data.define_flags, [
            f"--input_file={corpus}", f"--output_file={records}", f"--vocab_file={vocab}", "--max_seq_length=32",
            "--max_predictions_per_seq=5", "--dupe_factor=1", "--num_output_shards=2", "--num_workers=2"]),
            verbose=False)

        pretrain_dir = f"{root}/pretrain"
        pretrained = pretraining.run(_parse(pretraining.define_flags, [
            f"--input_file={records}*", f"--vocab_file={vocab}", f"--bert_config_file={root}/bert_config.json",
            f"--output_dir={pretrain_dir}", "--max_seq_length=32", "--max_predictions_per_seq=5",
            "--train_batch_size=8", "--num_train_steps=4", "--num_warmup_steps=0", "--learning_rate=1e-3",
            "--log_steps=2", "--save_checkpoints_steps=2", "--seed=1"]))

        finetune_dir = f"{root}/sentiment"
        finetuned = classifier.run(_parse(classifier.define_flags, workloads.classifier_argv(
            pretrain_dir, train, f"{finetune_dir}", num_train_steps=4, dev_file=dev, do_eval=True,
            cache_dir=f"{root}/cache", save_checkpoints_steps=2)))

        export = exporter.export_saved_model(finetune_dir, f"{root}/export")
        from_ram = client.predict_local(export, {"text": SENTENCES})
        downloaded = str(local / "export" / "1")
        fileio.copy_tree(export, downloaded)
    finally:
        os.chdir(cwd)
    fresh = subprocess.run([workloads.PYTHON, os.path.join(workloads.REPO, "tools", "serving_client.py"),
                            f"--local_saved_model={downloaded}", "--json"] + [f"--text={s}" for s in SENTENCES],
                           capture_output=True, text=True, timeout=300, env=workloads.tool_env())
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    results = {"pretrained": pretrained, "finetuned": finetuned, "export": export, "from_ram": from_ram,
               "fresh": [json.loads(line) for line in fresh.stdout.splitlines() if line.startswith("{")]}
    return root, results, local


def _listing(directory):
    return sorted(fileio._files_under(directory))


def test_every_output_of_the_flow_lands_on_the_ram_filesystem(ram_flow):
    root, results, local = ram_flow
    assert tokenization.load_vocab(f"{root}/vocab/vocab.txt")["[MASK]"] == 4
    assert _listing(f"{root}/records") == ["sample.tfrecord-00000-of-00002", "sample.tfrecord-00001-of-00002"]
    pretrain = _listing(f"{root}/pretrain")
    assert {"model/bert_tf.json", "model/config.json", "model/tf_model.h5", "model/vocab.txt",
            "model/tokenizer_config.json", "checkpoints/checkpoint", "checkpoints/ckpt-4.index",
            "train_metrics.jsonl"} <= set(pretrain)
    assert [json.loads(line)["step"] for line in
            tf.io.gfile.GFile(f"{root}/pretrain/train_metrics.jsonl").read().splitlines()] == [2, 4]
    sentiment = _listing(f"{root}/sentiment")
    assert {"model/bert_tf.json", "model/tf_model.h5", "eval_results.json", "eval_confusion_matrix.png",
            "eval_classification_report.txt"} <= set(sentiment)
    with tf.io.gfile.GFile(f"{root}/sentiment/eval_confusion_matrix.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert fileio.read_json(f"{root}/sentiment/eval_results.json")["num_examples"] == 32
    assert results["finetuned"]["eval"]["num_examples"] == 32
    assert any(name.startswith("train-") and name.endswith(".tfrecord") for name in _listing(f"{root}/cache"))
    assert results["export"] == f"{root}/export/1"
    export = set(_listing(results["export"]))
    assert {"saved_model.pb", "assets/vocab.txt", "assets.extra/tf_serving_warmup_requests",
            "assets.extra/bert_tf_export.json"} <= export
    # No temporary prefix survives publication, and nothing leaked onto the local disk as "ram:".
    assert not [name for name in tf.io.gfile.listdir(root) if ".partial-" in name]
    assert not [name for name in tf.io.gfile.listdir(f"{root}/sentiment") if ".partial-" in name]
    assert sorted(os.listdir(local)) == ["export"]


def test_the_export_predicts_the_same_from_ram_and_downloaded_into_a_fresh_process(ram_flow):
    _, results, _ = ram_flow
    from_ram, fresh = results["from_ram"], results["fresh"]
    assert len(from_ram) == len(fresh) == len(SENTENCES)
    for ours, theirs in zip(from_ram, fresh):
        assert ours["label"] == theirs["label"]
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)
        assert sum(ours["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def test_fine_tuned_weights_read_back_from_ram_equal_the_trained_model(ram_flow):
    root, _, _ = ram_flow
    model, meta, model_dir = exporter.load_task_model(f"{root}/sentiment")
    assert model_dir == f"{root}/sentiment/model" and meta["task"] == "classification"
    with fileio.local_copy(model_dir) as local:
        again, _, _ = exporter.load_task_model(local)
    for a, b in zip(model.weights, again.weights):
        assert a.name == b.name
        assert (a.numpy() == b.numpy()).all()


# ---- publication on object stores -----------------------------------------------------------------

def _write_tree(directory, files):
    for name, text in files.items():
        tf.io.gfile.makedirs(os.path.dirname(f"{directory}/{name}"))
        with tf.io.gfile.GFile(f"{directory}/{name}", "w") as f:
            f.write(text)


def test_a_directory_is_published_with_its_marker_last(monkeypatch):
    target = f"ram://publish-{uuid.uuid4().hex[:8]}/model"
    copied = []
    real_copy = tf.io.gfile.copy

    def copy(source, destination, overwrite=False):
        copied.append(destination[len(target) + 1:])
        real_copy(source, destination, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", copy)
    with fileio.atomic_path(target, marker="bert_tf.json") as temp:
        _write_tree(temp, {"bert_tf.json": "{}", "config.json": "{}", "z/weights.h5": "w", "vocab.txt": "v"})
    assert copied == ["config.json", "vocab.txt", "z/weights.h5", "bert_tf.json"]
    assert _listing(target) == ["bert_tf.json", "config.json", "vocab.txt", "z/weights.h5"]
    assert tf.io.gfile.listdir(os.path.dirname(target)) == ["model"]


def test_an_interrupted_publication_leaves_no_marker_and_readers_refuse_it(monkeypatch):
    parent = f"ram://interrupted-{uuid.uuid4().hex[:8]}"
    target = f"{parent}/model"
    _write_tree(target, {checkpoints.MODEL_META: '{"task": "old"}', "config.json": "old"})
    real_copy = tf.io.gfile.copy
    calls = []

    def failing_copy(source, destination, overwrite=False):
        calls.append(destination)
        if len(calls) == 2:
            raise tf.errors.UnavailableError(None, None, "connection reset")
        real_copy(source, destination, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", failing_copy)
    with pytest.raises(tf.errors.UnavailableError):
        with fileio.atomic_path(target, marker=checkpoints.MODEL_META) as temp:
            _write_tree(temp, {checkpoints.MODEL_META: '{"task": "new"}', "config.json": "new", "vocab.txt": "v"})
    # The old version's marker went first, the new one never arrived: the directory is not trusted.
    assert _listing(target) == ["config.json"]
    with pytest.raises(bert_tf.errors.UserError, match="no bert_tf.json"):
        checkpoints.read_model_meta(target)
    assert tf.io.gfile.listdir(parent) == ["model"]


def test_local_stand_ins_are_the_paths_themselves_on_disk_and_copies_elsewhere(tmp_path):
    with fileio.local_copy(str(tmp_path)) as local:
        assert local == str(tmp_path)
    remote = f"ram://stand-in-{uuid.uuid4().hex[:8]}"
    _write_tree(remote, {"a.txt": "alpha", "sub/b.txt": "beta"})
    with fileio.local_copy(remote) as local:
        assert not fileio.is_local(remote) and fileio.is_local(local)
        with open(os.path.join(local, "sub", "b.txt")) as f:
            assert f.read() == "beta"
    assert not os.path.exists(local)
    with fileio.staged_output_dir(f"{remote}/out") as staged:
        with open(os.path.join(staged, "c.txt"), "w") as f:
            f.write("gamma")
    assert tf.io.gfile.GFile(f"{remote}/out/c.txt").read() == "gamma"


# ---- TensorFlow's own gs:// filesystem, against a local GCS emulator --------------------------------

GCS_DRIVER = r'''
import json, sys
import bert_tf
import tensorflow as tf
from absl import flags
from bert_tf import fileio
from bert_tf.export import client, exporter
from bert_tf.jobs import classifier
from tests import workloads

root, checkpoint, train, dev = sys.argv[1:5]
fileio.copy_tree(checkpoint, f"{root}/init")
for local, name in ((train, "train.tsv"), (dev, "dev.tsv")):
    tf.io.gfile.copy(local, f"{root}/data/{name}")
values = flags.FlagValues()
classifier.define_flags(values)
values(["driver"] + workloads.classifier_argv(f"{root}/init", f"{root}/data/train.tsv", f"{root}/sentiment",
                                              num_train_steps=2, dev_file=f"{root}/data/dev.tsv", do_eval=True))
results = classifier.run(values)
export = exporter.export_saved_model(f"{root}/sentiment", f"{root}/export")
print(json.dumps({"eval_examples": results["eval"]["num_examples"], "export": export,
                  "predictions": client.predict_local(export, {"text": sys.argv[5:]})}))
'''


@pytest.mark.slow
def test_fine_tune_export_and_predict_on_gs_through_tensorflows_gcs_filesystem(tmp_path, tiny_checkpoint):
    """gs:// end to end in one process: the HF checkpoint copied down, records, checkpoints, the
    model staged up and published marker-last, the PNG, the export, and the load from gs://.

    Slow (``make test-all``): a second TensorFlow process that fine-tunes and exports, and every
    upload waits curl's one-second "Expect: 100-continue" timeout, which the emulator never answers.
    """
    from tests.gcs_emulator import LocalGcs

    gcs = LocalGcs(tmp_path)
    try:
        train = workloads.small_tsv(tmp_path / "train.tsv", 32)
        dev = workloads.small_tsv(tmp_path / "dev.tsv", 16, offset=32)
        root = f"gs://{gcs.bucket}/run"
        run = subprocess.run([workloads.PYTHON, "-c", GCS_DRIVER, root, tiny_checkpoint, train, dev] + SENTENCES,
                             capture_output=True, text=True, timeout=600, cwd=tmp_path,
                             env=workloads.tool_env(**gcs.environment()))
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        stored = gcs.objects("run/")
    finally:
        gcs.close()
    assert out["eval_examples"] == 16 and out["export"] == f"{root}/export/1"
    assert [p["label"] for p in out["predictions"]] and len(out["predictions"]) == len(SENTENCES)
    for name in ("init/tf_model.h5", "sentiment/model/bert_tf.json", "sentiment/model/tf_model.h5",
                 "sentiment/model/config.json", "sentiment/eval_results.json", "sentiment/eval_confusion_matrix.png",
                 "sentiment/checkpoints/checkpoint", "export/1/saved_model.pb", "export/1/assets/vocab.txt",
                 "export/1/variables/variables.index"):
        assert stored.get(f"run/{name}", 0) > 0, name
    assert not [name for name in stored if ".partial-" in name]
    # Nothing of the run landed on the local disk (no folder named "gs:").
    assert sorted(os.listdir(tmp_path)) == ["dev.tsv", "local_gcs_ca.pem", "train.tsv"]
