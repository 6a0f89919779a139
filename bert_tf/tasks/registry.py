"""The one map from a model directory's ``bert_tf.json`` "task" to its task class."""
from bert_tf.errors import UserError
from bert_tf.tasks.classification import ClassificationTask
from bert_tf.tasks.multiple_choice import MultipleChoiceTask
from bert_tf.tasks.pretraining import PretrainingTask
from bert_tf.tasks.squad import SquadTask
from bert_tf.tasks.tagging import TaggingTask

TASKS = {"classification": ClassificationTask, "regression": ClassificationTask, "tagging": TaggingTask,
         "squad": SquadTask, "multiple_choice": MultipleChoiceTask, "pretraining": PretrainingTask}
# The tasks whose fine-tuned models have serving signatures (export, bert_tf.Predictor).
SERVABLE = tuple(name for name, cls in TASKS.items() if cls.from_meta({"task": name}).text_inputs)


def task_of(meta):
    """The task of a model directory's ``bert_tf.json`` (head and serving settings, no job flags)."""
    name = meta.get("task")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}")
    return TASKS[name].from_meta(meta)


def servable_task(meta, model_dir):
    """``task_of`` for a model to serve; refuses one without serving signatures."""
    if meta.get("task") not in SERVABLE:
        raise UserError(f"{model_dir} holds a {meta.get('task')!r} model; export supports {', '.join(SERVABLE)}")
    return task_of(meta)


def build_task_model(name, config, num_labels=None):
    """The model of task ``name`` with ``num_labels`` outputs (choices, for multiple choice)."""
    labels = [str(i) for i in range(num_labels)] if num_labels else None
    return task_of({"task": name, "labels": labels, "num_choices": num_labels}).build_model(config)
