"""run_metadata.json: what produced a model, written next to its results and inside model/.

One file, written by ``write`` at the end of every training and fine-tuning job: the command
line, the flags that differ from their defaults, the input files with their SHA-256, the label
map, the learning-rate schedule in effect, package versions, the git commit of the bert_tf
source when it is a git checkout, start and end time, and the final metrics. The exporter puts a
copy (``for_export``: file names instead of this machine's paths) into every SavedModel.
"""
import datetime
import hashlib
import os
import platform
import shlex
import subprocess
import sys

import tensorflow as tf

from bert_tf import fileio
from bert_tf.modeling import checkpoints
from bert_tf.training import optimization, recipes

FILENAME = "run_metadata.json"
# Flags naming files a job reads as data (comma-separated globs for the pretraining records).
INPUT_FLAGS = ("train_file", "dev_file", "test_file", "predict_file", "input_file", "eval_input_file", "vocab_file")
PACKAGES = ("tensorflow", "tf-keras", "transformers", "bert_tf")


def now():
    """The current time as the metadata records it (UTC, ISO 8601, seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def sha256(path):
    """The hex SHA-256 of a file's bytes (any tf.io.gfile path), read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _plain(value):
    """JSON-ready copies of flag values and metrics (numpy scalars, tuples, nested containers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def changed_flags(flags):
    """{name: value} of the flags whose value differs from their default (absl FlagValues), or of
    every attribute of a plain namespace."""
    if not hasattr(flags, "flags_by_module_dict"):
        return {k: _plain(v) for k, v in sorted(vars(flags).items())}
    changed = {}
    for module_flags in flags.flags_by_module_dict().values():
        for flag in module_flags:
            if flag.present or flag.value != flag.default:
                changed[flag.name] = _plain(flag.value)
    return dict(sorted(changed.items()))


def input_files(flags):
    """[{flag, path, name, bytes, sha256}] for every data file the flags name (globs expanded)."""
    found = []
    for name in INPUT_FLAGS:
        value = getattr(flags, name, None)
        if not value:
            continue
        for pattern in (p.strip() for p in str(value).split(",") if p.strip()):
            for path in sorted(tf.io.gfile.glob(pattern)) or [pattern]:
                if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
                    continue
                found.append({"flag": name, "path": path, "name": os.path.basename(path),
                              "bytes": tf.io.gfile.stat(path).length, "sha256": sha256(path)})
    return found


def package_versions():
    """Versions of Python and the packages a model's behaviour depends on (None: not installed)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_commit():
    """{commit, dirty} of the git checkout holding this bert_tf source, or None (no git, no
    checkout, or bert_tf installed outside one)."""
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", "-C", source, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        # A site-packages copy can sit inside some other repository: only our own checkout counts.
        if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(source):
            return None
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def final_metrics(results):
    """The scalar results of each split ('train', 'eval', 'test'), the last training log line and
    the best-checkpoint record; long per-example lists stay in the *_results.json files."""
    metrics = {}
    for split, values in (results or {}).items():
        if not isinstance(values, dict):
            continue
        entry = {k: _plain(v) for k, v in values.items() if v is None or isinstance(v, (bool, int, float, str))
                 or (hasattr(v, "item") and getattr(v, "ndim", 1) == 0)}
        if values.get("train_history"):
            entry["last_logged"] = _plain(values["train_history"][-1])
        if isinstance(values.get("best"), dict):
            entry["best"] = _plain(values["best"])
        metrics[split] = entry
    return metrics


def collect(flags, results, started, labels=None):
    """The metadata dict (see the module docstring)."""
    meta = {"command": shlex.join(sys.argv), "flags": changed_flags(flags), "input_files": input_files(flags),
            "labels": {str(i): label for i, label in enumerate(labels)} if labels else None,
            "packages": package_versions(), "git": git_commit(), "started": started, "finished": now(),
            "metrics": final_metrics(results)}
    if hasattr(flags, "learning_rate") and getattr(flags, "do_train", True):
        meta["lr_schedule"] = optimization.schedule_settings(flags)
        if getattr(flags, "recipe", None):
            # The values in effect, whether the recipe or an explicit flag set them.
            meta["recipe"] = {"name": flags.recipe, **_plain(recipes.in_effect(flags))}
    return meta


def write(flags, results, started, is_chief=True, labels=None):
    """Writes output_dir/run_metadata.json and, when this run trained, output_dir/model/'s copy.

    An evaluation-only run leaves model/'s copy (the training run's) as it is. Only the chief
    writes under multi-worker training. Returns the metadata (None on other workers).
    """
    if not is_chief:
        return None

    meta = collect(flags, results, started, labels)
    fileio.write_json(os.path.join(flags.output_dir, FILENAME), meta)
    model_dir = os.path.join(flags.output_dir, "model")
    if getattr(flags, "do_train", True) and tf.io.gfile.exists(os.path.join(model_dir, checkpoints.MODEL_META)):
        fileio.write_json(os.path.join(model_dir, FILENAME), meta)
    return meta


def _file_name(value):
    return value.rstrip("/").rsplit("/", 1)[-1] if isinstance(value, str) and "/" in value else value


def for_export(meta):
    """The metadata without this machine's paths: input files and path-valued flags keep their
    last component, and the command line (all in the flags) is left out."""
    meta = dict(meta)
    meta.pop("command", None)
    meta["flags"] = {name: _file_name(value) for name, value in (meta.get("flags") or {}).items()}
    meta["input_files"] = [{k: v for k, v in entry.items() if k != "path"} for entry in meta.get("input_files") or []]
    return meta


def copy_into_export(model_dir, export_dir, relative_path):
    """Writes ``for_export`` of model_dir's run_metadata.json to export_dir/relative_path; a model
    saved before run metadata existed has none, and its export gets none."""
    source = os.path.join(model_dir, FILENAME)
    if not tf.io.gfile.exists(source):
        return None
    meta = for_export(fileio.read_json_object(source, "run metadata", {"flags": (dict, type(None))},
                                              "delete it or restore it from the training run's output_dir"))
    fileio.write_json(os.path.join(export_dir, relative_path), meta)
    return meta
