"""Set-up every job shares: tokenizer and config from flags, the strategy, the trainer."""
import dataclasses
import math
import os
import sys

import tensorflow as tf
import tf_keras

from bert_tf import config as config_lib
from bert_tf import distribute, fileio
from bert_tf.errors import UserError, warn
from bert_tf.modeling import checkpoints
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


def model_dir_of(path):
    """A run's output_dir or its model/ subdirectory -> the directory holding the saved model."""
    if path and tf.io.gfile.exists(os.path.join(path, "model", checkpoints.MODEL_META)):
        return os.path.join(path, "model")
    return path


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


def check_training_flags(flags):
    """Refuses non-positive sizes, counts and rates up front, before any data is converted."""
    for name in ("train_batch_size", "eval_batch_size", "num_train_steps", "save_checkpoints_steps", "log_steps",
                 "steps_per_execution", "num_train_epochs", "learning_rate"):
        value = getattr(flags, name, None)
        if value is not None and value <= 0:
            raise UserError(f"--{name}={value} must be positive")


def num_steps(flags, num_examples):
    """--num_train_steps when set, else epochs x examples / batch (at least one step)."""
    explicit = getattr(flags, "num_train_steps", None)
    if explicit is not None:
        if explicit <= 0:
            raise UserError(f"--num_train_steps={explicit} must be positive")
        return explicit
    if flags.num_train_epochs <= 0:
        raise UserError(f"--num_train_epochs={flags.num_train_epochs} must be positive")
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
    # Built here as well, so a bad schedule stops the run before any model is built.
    plotted = optimization.make_schedule(flags.learning_rate, num_train_steps, num_warmup_steps, **schedule)
    training = getattr(flags, "do_train", True)
    if training:
        warn_if_warmup_covers(num_train_steps, num_warmup_steps, flags.learning_rate)
    print(distribute.describe(strategy, flags.train_batch_size if training else flags.eval_batch_size,
                              flags.mixed_precision), file=sys.stderr, flush=True)
    tf_keras.utils.set_random_seed(flags.seed)
    trainer = Trainer(
        strategy, model_fn,
        lambda: optimization.create_optimizer(flags.learning_rate, num_train_steps, num_warmup_steps,
                                              weight_decay=flags.weight_decay, optimizer=flags.optimizer,
                                              layerwise_lr_decay=getattr(flags, "layerwise_lr_decay", 1.0),
                                              num_layers=num_layers, **schedule),
        flags.output_dir, flags.train_batch_size, mixed_precision=flags.mixed_precision,
        jit_compile=flags.jit_compile, steps_per_execution=flags.steps_per_execution,
        save_checkpoints_steps=flags.save_checkpoints_steps, log_steps=flags.log_steps,
        nan_policy=flags.nan_policy,
        gradient_accumulation_steps=getattr(flags, "gradient_accumulation_steps", 1))
    # Pretraining has no --do_train: it always trains.
    if trainer.is_chief and getattr(flags, "do_train", True):
        optimization.save_schedule_png(plotted, os.path.join(flags.output_dir, "lr_schedule.png"))
    return trainer


def load_init(model, setup):
    """Model builder helper: build, load the starting checkpoint if any, then apply LoRA/freezing."""
    from bert_tf.modeling import lora

    model.build_with_dummies()
    if setup.init_checkpoint:
        checkpoints.load_weights(model, setup.init_checkpoint, allow_partial_init=setup.allow_partial_init)
    if setup.freeze_embeddings or setup.freeze_layers:
        model.bert.embeddings.trainable = False
    for layer in model.bert.encoder.layer[:setup.freeze_layers]:
        layer.trainable = False
    return lora.apply_peft(model, setup.lora_rank, setup.lora_alpha, setup.freeze_encoder, seed=setup.seed)
