"""Set-up every job shares: tokenizer and config from flags, the strategy, the trainer."""
import dataclasses
import math
import os
import sys

import tensorflow as tf
import tf_keras

from bert_tf import config as config_lib
from bert_tf import distribute, fileio, run_metadata
from bert_tf.data import report
from bert_tf.errors import ParameterError, UserError, warn
from bert_tf.modeling import checkpoints, lora
from bert_tf.modeling.checkpoints import model_dir_of
from bert_tf import tokenization
from bert_tf.tokenization import HostTokenizer
from bert_tf.training import optimization
from bert_tf.training.trainer import Trainer


@dataclasses.dataclass
class ModelSetup:
    config: object
    tokenizer: HostTokenizer
    init_checkpoint: str = None
    # Parameter-efficient fine-tuning (--lora_rank/--lora_alpha/--freeze_encoder), applied by load_init.
    lora_rank: int = 0
    lora_alpha: float = 16.0
    freeze_encoder: bool = False
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    seed: int = None
    # --allow_partial_init: start weights the checkpoint lacks from scratch instead of stopping.
    allow_partial_init: bool = False


def resolve_model(flags):
    """Config, tokenizer and starting checkpoint from --init_checkpoint/--bert_config_file/--vocab_file."""
    init = model_dir_of(flags.init_checkpoint)
    vocab_file, stored_lower = flags.vocab_file, None
    if init:
        checkpoints.source_kind(init)
        stored_vocab, stored_lower = checkpoints.tokenizer_settings(init)
        # The checkpoint's tokenizer config describes its own vocab only.
        stored_lower = stored_lower if not vocab_file or vocab_file == stored_vocab else None
        vocab_file = vocab_file or stored_vocab
    if not vocab_file:
        raise UserError("--vocab_file is required (the --init_checkpoint directory holds no vocab.txt)")
    lower = tokenization.resolve_lower_case(vocab_file, flags.do_lower_case, stored_lower)
    tokenizer = HostTokenizer(vocab_file, do_lower_case=lower)
    if flags.bert_config_file:
        config = config_lib.load_bert_config(flags.bert_config_file)
    elif init:
        config = checkpoints.load_checkpoint_config(init)
    else:
        raise UserError("pass --init_checkpoint (pretrained weights) or --bert_config_file (train from scratch)")
    if flags.bert_config_file and not init:
        config.vocab_size = tokenizer.vocab_size
    if flags.bert_config_file and init:
        _check_config_matches_checkpoint(config, init)
    if config.vocab_size != tokenizer.vocab_size:
        raise UserError(f"the vocab file has {tokenizer.vocab_size} tokens but the model config says vocab_size="
                        f"{config.vocab_size}: use the vocab that came with the checkpoint")
    config_lib.check_seq_length(config, flags.max_seq_length)
    lora_rank = getattr(flags, "lora_rank", 0) or 0
    if lora_rank < 0:
        raise UserError(f"--lora_rank={lora_rank} must be 0 (off) or positive")
    freeze_layers = getattr(flags, "freeze_layers", 0) or 0
    if not 0 <= freeze_layers <= config.num_hidden_layers:
        raise UserError(f"--freeze_layers={freeze_layers} must be between 0 and the model's "
                        f"{config.num_hidden_layers} encoder layers")
    freeze_encoder = bool(getattr(flags, "freeze_encoder", False))
    if freeze_layers and (lora_rank or freeze_encoder):
        raise UserError("--freeze_layers excludes --lora_rank and --freeze_encoder, which already freeze the whole "
                        "encoder: pick one")
    return ModelSetup(config, tokenizer, init, lora_rank=lora_rank, lora_alpha=getattr(flags, "lora_alpha", 16.0),
                      freeze_encoder=freeze_encoder,
                      freeze_embeddings=bool(getattr(flags, "freeze_embeddings", False)), freeze_layers=freeze_layers,
                      seed=getattr(flags, "seed", None),
                      allow_partial_init=bool(getattr(flags, "allow_partial_init", False)))


# Flags naming data the input pipeline reads or outputs the training loop writes; a remote TPU
# reaches them only on GCS.
TPU_PATH_FLAGS = ("input_file", "output_dir", "cache_dir")


# The config fields that fix weight shapes: a checkpoint loads only into a model that agrees on them.
ARCHITECTURE_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size")


def _check_config_matches_checkpoint(config, init):
    """Refuses --bert_config_file describing another model size than --init_checkpoint, before any work."""
    path = checkpoints.checkpoint_config_path(init)
    if path is None:
        return
    try:
        stored = fileio.read_json(path)  # raw: unknown keys in a checkpoint's own config do not matter here
    except ValueError:
        return
    differing = [f"{key}={getattr(config, key)} vs {stored[key]}" for key in ARCHITECTURE_KEYS
                 if key in stored and getattr(config, key) != stored[key]]
    if differing:
        raise UserError(f"--bert_config_file does not describe the --init_checkpoint model ({', '.join(differing)}): "
                        "leave --bert_config_file out to use the checkpoint's own config")


def strategy_from(flags):
    """The strategy from --strategy/--tpu/--num_gpus and google-research/bert's --use_tpu, --tpu_name,
    --master, --tpu_zone, --gcp_project and --num_tpu_cores; jobs call it before any other TensorFlow op."""
    paths = {name: getattr(flags, name, None) for name in TPU_PATH_FLAGS}
    name, tpu = flags.strategy, flags.tpu
    use_tpu, master = getattr(flags, "use_tpu", False), getattr(flags, "master", None)
    if use_tpu:
        if name not in ("auto", "tpu"):
            raise UserError(f"--use_tpu asks for a TPU but --strategy={name}: drop one of them")
        name, tpu = "tpu", tpu or master or "local"
    elif master:
        raise UserError("--master names a TPU worker and only applies with --use_tpu: add --use_tpu, or drop "
                        "--master (multi-worker training reads TF_CONFIG)")
    location = {flag: getattr(flags, flag, None) for flag in ("tpu_zone", "gcp_project")}
    if any(location.values()) and name != "tpu" and not (name == "auto" and tpu):
        given = next(flag for flag, value in location.items() if value)
        raise UserError(f"--{given} only applies to a TPU named by --tpu_name: add --use_tpu --tpu_name=NAME, "
                        f"or drop --{given}")
    strategy = distribute.get_strategy(name, tpu, flags.num_gpus, paths=paths, **location)
    cores = getattr(flags, "num_tpu_cores", None)
    if cores is not None and isinstance(strategy, tf.distribute.TPUStrategy) and \
            cores != strategy.num_replicas_in_sync:
        raise UserError(f"--num_tpu_cores={cores} but the TPU found has {strategy.num_replicas_in_sync} cores: "
                        f"pass --num_tpu_cores={strategy.num_replicas_in_sync} or leave it out")
    return strategy


def write_eval_results_txt(output_dir, values, global_step):
    """google-research/bert's eval_results.txt: sorted ``key = value`` lines, global_step included."""
    values = dict(values, global_step=int(global_step))
    text = "".join(f"{key} = {value:g}\n" if isinstance(value, float) else f"{key} = {value}\n"
                   for key, value in sorted(values.items()) if value is not None)
    fileio.write_text(os.path.join(output_dir, "eval_results.txt"), text)


def num_steps(flags, num_examples):
    """--num_train_steps when set, else epochs x examples / batch (at least one step); the flags' range
    checks (bert_tf/flag_ranges.py) keep both positive."""
    explicit = getattr(flags, "num_train_steps", None)
    if explicit is not None:
        return explicit
    return max(1, int(math.ceil(num_examples * flags.num_train_epochs / flags.train_batch_size)))


def warn_if_warmup_covers(num_train_steps, num_warmup_steps, learning_rate):
    """One line when warmup lasts the whole run: the rate then never reaches --learning_rate."""
    if num_warmup_steps >= num_train_steps > 1:
        reach = (f"never reaches --learning_rate={learning_rate:g} and ends at "
                 f"{learning_rate * num_train_steps / num_warmup_steps:.3g}" if num_warmup_steps > num_train_steps
                 else f"reaches --learning_rate={learning_rate:g} only at the last step")
        warn(f"the {num_warmup_steps} warmup steps cover all {num_train_steps} training steps: the learning rate "
             f"{reach}; lower the warmup (--num_warmup_steps / --warmup_proportion) or train longer")


def make_trainer(flags, strategy, model_fn, num_train_steps, num_warmup_steps, num_layers=None):
    """The Trainer with the optimizer the flags describe; ``num_layers`` (the encoder's depth) is
    needed only for --layerwise_lr_decay. A training run's chief plots the schedule to
    output_dir/lr_schedule.png."""
    if flags.train_batch_size <= 0:
        raise UserError(f"--train_batch_size={flags.train_batch_size} must be positive")
    schedule = optimization.schedule_settings(flags)
    try:
        # Built here as well, so a bad schedule stops the run before any model is built.
        plotted = optimization.make_schedule(flags.learning_rate, num_train_steps, num_warmup_steps, **schedule)
    except ParameterError as error:
        raise error.as_flags() from None
    training = getattr(flags, "do_train", True)
    if training:
        warn_if_warmup_covers(num_train_steps, num_warmup_steps, flags.learning_rate)
    print(distribute.describe(strategy, flags.train_batch_size if training else flags.eval_batch_size,
                              flags.mixed_precision), file=sys.stderr, flush=True)
    tf_keras.utils.set_random_seed(flags.seed)
    if training and distribute.is_chief(strategy):
        record_identity(flags)
    trainer = Trainer(
        strategy, model_fn,
        lambda: optimization.create_optimizer(flags.learning_rate, num_train_steps, num_warmup_steps,
                                              weight_decay=flags.weight_decay, optimizer=flags.optimizer,
                                              epsilon=getattr(flags, "adam_epsilon", 1e-6),
                                              layerwise_lr_decay=getattr(flags, "layerwise_lr_decay", 1.0),
                                              head_lr_multiplier=getattr(flags, "head_lr_multiplier", 1.0),
                                              num_layers=num_layers, **schedule),
        flags.output_dir, flags.train_batch_size, mixed_precision=flags.mixed_precision,
        jit_compile=flags.jit_compile, steps_per_execution=flags.steps_per_execution,
        save_checkpoints_steps=flags.save_checkpoints_steps, log_steps=flags.log_steps,
        nan_policy=flags.nan_policy, clip_norm=getattr(flags, "clip_norm", 1.0),
        gradient_accumulation_steps=getattr(flags, "gradient_accumulation_steps", 1),
        # The trainer's errors and warnings then name flags: each its parameter's name, but for the reader's.
        flag_names={"skip_corrupt": "skip_corrupt_records"})
    # Pretraining has no --do_train: it always trains.
    if trainer.is_chief and getattr(flags, "do_train", True):
        optimization.save_schedule_png(plotted, os.path.join(flags.output_dir, "lr_schedule.png"))
    return trainer


def load_init(model, setup):
    """Model builder helper: build, load the starting checkpoint if any, then apply LoRA/freezing."""
    model.build_with_dummies()
    if setup.init_checkpoint:
        checkpoints.load_weights(model, setup.init_checkpoint, allow_partial_init=setup.allow_partial_init)
    if setup.freeze_embeddings or setup.freeze_layers:
        model.bert.embeddings.trainable = False
    for layer in model.bert.encoder.layer[:setup.freeze_layers]:
        layer.trainable = False
    return lora.apply_peft(model, setup.lora_rank, setup.lora_alpha, setup.freeze_encoder, seed=setup.seed)


# ---- the output directory: apart from the inputs, ours, and resumed only by the same run -------------
IDENTITY_FILE = "run_identity.json"
# Any of these in --output_dir marks it as written by bert_tf (the lock alone does not: the job takes it
# before these checks run).
# The data report comes before run_identity.json, so a run killed between the two left our files.
RUN_MARKERS = (IDENTITY_FILE, "run_metadata.json", "checkpoints", "train_metrics.jsonl",
               os.path.join("model", checkpoints.MODEL_META), report.REPORT_JSON, report.REPORT_PNG)
# Files a job reads (comma-separated globs for pretraining records) or reads from (directories).
INPUT_FLAGS = ("train_file", "dev_file", "test_file", "predict_file", "input_file", "eval_input_file", "vocab_file",
               "bert_config_file", "init_checkpoint", "data_dir", "tfds_data_dir")
# What fixes the model a training run produces: a rerun into the same --output_dir resumes its
# checkpoints only when these (and the training data's hashes) are as the first run recorded. Step
# counts, rates and evaluation settings may change between resumes.
IDENTITY_FLAGS = ("task_name", "data_dir", "tfds_name", "tfds_data_dir", "text_column", "text_pair_column",
                  "label_column", "labels", "task_type", "max_seq_length", "do_lower_case", "max_train_examples",
                  "init_checkpoint", "bert_config_file", "lora_rank", "lora_alpha", "freeze_encoder", "freeze_layers",
                  "freeze_embeddings", "doc_stride", "max_query_length", "version_2_with_negative",
                  "max_predictions_per_seq", "dynamic_masking", "masked_lm_prob", "encoding", "train_batch_size",
                  "gradient_accumulation_steps", "seed", "optimizer")
IDENTITY_FILES = ("train_file", "input_file", "vocab_file")
# Larger training inputs are identified by name and size (hashing terabytes of records at start-up is not
# worth it); fine-tuning files are hashed.
_HASH_LIMIT = 256 << 20
# Our training state in --output_dir, removed when --overwrite_output_dir starts a different run there.
TRAINING_STATE = ("checkpoints", "best", "logs", "train_metrics.jsonl", IDENTITY_FILE)


def _input_paths(flags):
    inputs = {}
    for name in INPUT_FLAGS:
        value = getattr(flags, name, None)
        if not value or str(value).startswith("hub:"):
            continue
        if name == "bert_config_file" and not tf.io.gfile.exists(value):
            continue  # a preset name
        inputs[name] = value
    return inputs


def run_identity(flags):
    """{flags: IDENTITY_FLAGS' values, files: {flag: [[name, bytes, sha256 or None]]}} of a training run."""
    settings = {}
    for name in IDENTITY_FLAGS:
        value = getattr(flags, name, None)
        settings[name] = list(value) if isinstance(value, (list, tuple)) else value
    files = {}
    for name in IDENTITY_FILES:
        value = getattr(flags, name, None)
        for path in fileio._paths_of(value) if value else []:
            if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
                continue
            size = tf.io.gfile.stat(path).length
            digest = run_metadata.sha256(path) if size <= _HASH_LIMIT else None
            files.setdefault(name, []).append([os.path.basename(path), size, digest])
    return {"flags": settings, "files": files}


def _identity_difference(old, new):
    for name in sorted(set(old.get("flags", {})) | set(new["flags"])):
        if old.get("flags", {}).get(name) != new["flags"].get(name):
            return f"--{name} was {old.get('flags', {}).get(name)!r}, now {new['flags'].get(name)!r}"
    for name in sorted(set(old.get("files", {})) | set(new["files"])):
        if old.get("files", {}).get(name) != new["files"].get(name):
            return f"the --{name} content differs"
    return None


def _earlier_run_difference(flags, identity):
    """How ``identity`` differs from the training run recorded in --output_dir (None: same, or none there)."""
    path = os.path.join(flags.output_dir, IDENTITY_FILE)
    if tf.io.gfile.exists(path):
        return _identity_difference(fileio.read_json(path), identity)
    if tf.io.gfile.exists(os.path.join(flags.output_dir, "checkpoints")):
        return f"it holds checkpoints but no {IDENTITY_FILE}"
    return None


def prepare_output_dir(flags, training):
    """Checks before anything is written: --output_dir (and --cache_dir) must not be, lie inside or hold
    an input, nor be a non-empty directory bert_tf did not write (unless --overwrite_output_dir); a
    training run into a directory holding an earlier run would resume it, so the run's identity
    (``run_identity``) must be the one recorded there, or --overwrite_output_dir given (``record_identity``
    then starts over)."""
    output_dir = flags.output_dir
    overwrite = bool(getattr(flags, "overwrite_output_dir", False))
    fileio.check_outputs_apart({"--output_dir": output_dir, "--cache_dir": getattr(flags, "cache_dir", None)},
                               _input_paths(flags))
    fileio.check_replaceable_dir(output_dir, RUN_MARKERS, overwrite, action="write into it anyway",
                                 ignore=(".lock",))
    if training and not overwrite:
        difference = _earlier_run_difference(flags, run_identity(flags))
        if difference:
            raise UserError(f"--output_dir {output_dir} holds an earlier training run that this one would resume, "
                            f"but {difference}: choose a new --output_dir, or pass --overwrite_output_dir to start "
                            "over there")


def record_identity(flags):
    """Training's first write: output_dir/run_identity.json. An earlier run of another identity there
    (allowed by --overwrite_output_dir) loses its training state first, so nothing of it is resumed."""
    identity = run_identity(flags)
    if _earlier_run_difference(flags, identity):
        for name in TRAINING_STATE:
            target = os.path.join(flags.output_dir, name)
            if tf.io.gfile.isdir(target):
                tf.io.gfile.rmtree(target)
            elif tf.io.gfile.exists(target):
                tf.io.gfile.remove(target)
    fileio.write_json(os.path.join(flags.output_dir, IDENTITY_FILE), identity)
