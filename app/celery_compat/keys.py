"""Every Redis key the adapter uses, built in one place.

Two families:

* Celery's own names, kept so Celery's tools and habits read them: a task's result document
  ``celery-task-meta-<id>`` (also the channel its updates are published on), a group's
  ``celery-taskset-meta-<id>``, a chord's counter ``chord-unlock-<group id>``.
* Ours, all under ``celery-compat:`` with ``:`` as the one separator: revoke marks, beat's
  run history, the workers' counters.

RQ's keys are never spelled here: they come from RQ (``Job.key_for``, ``Queue.key``, the
registries' ``.key``), so ``RQ_KEY_PREFIX`` changes them all at once, Lua scripts included
(they receive keys and prefixes as arguments, never hard-coded).
"""

from __future__ import annotations

from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

META_PREFIX = "celery-task-meta-"
TASKSET_PREFIX = "celery-taskset-meta-"
CHORD_PREFIX = "chord-unlock-"
OURS = "celery-compat:"
REVOKED_PREFIX = f"{OURS}revoked:"
#: The revoke mark's name before the keys were unified; still read, so a revoke sent before an
#: upgrade holds after it (the mark expires with the results).
LEGACY_REVOKED_PREFIX = "celery-compat-revoked-"
#: Both, for a Lua script that checks a mark (``EXISTS`` takes several keys).
REVOKED_PREFIXES = (REVOKED_PREFIX, LEGACY_REVOKED_PREFIX)
STATS_KEY = f"{OURS}stats"
BEAT_PREFIX = f"{OURS}beat:"
#: Remote control (``app.control``): commands are published on this channel, to every worker
#: listening (Celery's pidbox fanout); each reply is pushed to the list the command names.
CONTROL_CHANNEL = f"{OURS}control"
CONTROL_REPLY_PREFIX = f"{OURS}control-reply:"
#: The listening workers: node name -> the time (epoch seconds) its listing expires.
CONTROL_NODES = f"{OURS}control-nodes"
#: The index of sent tasks (a sorted set by send time), and its per-name and per-queue parts.
TASKS = f"{OURS}tasks"
TASK_INFO_PREFIX = f"{OURS}task:"
#: Rate limits, per worker node and task name: the next free start slot, and the tasks held until theirs.
RATE_PREFIX = f"{OURS}rate:"
RATE_HELD_PREFIX = f"{OURS}rate-held:"

#: What each listening worker node says of itself (host, pid, pool, its RQ workers), while it listens.
NODE_PREFIX = f"{OURS}node:"
#: The monitor's time series: task counters per time bucket, and queue lengths per minute.
SERIES_PREFIX = f"{OURS}series:"
QUEUE_LENGTHS_PREFIX = f"{OURS}queue-lengths:"


def meta(task_id: str) -> str:
    """A task's result document, and the pub/sub channel its every state is published on."""
    return f"{META_PREFIX}{task_id}"


def taskset(group_id: str) -> str:
    """The ids of a group's results (``GroupResult.save``), which a chord also reads."""
    return f"{TASKSET_PREFIX}{group_id}"


def chord_counter(group_id: str) -> str:
    """The set of a chord's header leaves that are done (their ids: a leaf counted twice counts once)."""
    return f"{CHORD_PREFIX}{group_id}"


def chord_claim(group_id: str) -> str:
    """Which leaf completed a chord's header and so sends its body."""
    return f"{CHORD_PREFIX}{group_id}.claim"


def chord_added(group_id: str) -> str:
    """The leaves ``Task.add_to_chord`` added to a chord's header after it was sent."""
    return f"{CHORD_PREFIX}{group_id}.added"


def chord_size(group_id: str) -> str:
    """The size of a chord whose header was a generator (known only once it is consumed)."""
    return f"{CHORD_PREFIX}{group_id}.size"


def revoked(task_id: str) -> str:
    return f"{REVOKED_PREFIX}{task_id}"


def revoked_any(task_id: str) -> list[str]:
    """Both spellings of a revoke mark, for one ``EXISTS``."""
    return [revoked(task_id), f"{LEGACY_REVOKED_PREFIX}{task_id}"]


def control_channel(db: int) -> str:
    """The command channel of one Redis database: pub/sub channels are shared by all databases."""
    return f"{CONTROL_CHANNEL}:{db}"


def control_reply(ticket: str) -> str:
    """The list a broadcast's replies are pushed to; it expires soon after the broadcast's timeout."""
    return f"{CONTROL_REPLY_PREFIX}{ticket}"


def beat_schedule() -> str:
    """Beat's run history: a hash of entry name -> JSON ``{"last_run_at", "total_run_count"}``."""
    return f"{BEAT_PREFIX}schedule"


def task_children(task_id: str) -> str:
    """The ids of the tasks sent with ``task_id`` as their parent (a set, kept as long as the index)."""
    return f"{TASK_INFO_PREFIX}{task_id}:children"


def task_retries(task_id: str) -> str:
    """Each retry of a task, in order: a list of JSON ``{"at", "retries", "reason"}`` the worker appends."""
    return f"{TASK_INFO_PREFIX}{task_id}:retries"


def beat_entries() -> str:
    """What beat runs: a hash of entry name -> JSON ``{"task", "schedule", "next_run_at", ...}``."""
    return f"{BEAT_PREFIX}entries"


def node_totals(hostname: str) -> str:
    """A worker node's tasks run since it started, by task name (a hash its work processes add to)."""
    return f"{NODE_PREFIX}{hostname}:totals"


def node(hostname: str) -> str:
    """A listening worker node's description (a hash that expires unless the node lists itself again)."""
    return f"{NODE_PREFIX}{hostname}"


def series(step: int, start: int) -> str:
    """The task counters of one time bucket (``step`` seconds from ``start``, epoch seconds)."""
    return f"{SERIES_PREFIX}{step}:{start}"


def queue_lengths(queue_name: str) -> str:
    """A queue's length samples: a sorted set by minute of ``"<minute>:<queued>:<started>"``."""
    return f"{QUEUE_LENGTHS_PREFIX}{queue_name}"


def queue_sample_claim(minute: int) -> str:
    """Taken by the one worker that samples the queue lengths for that minute."""
    return f"{QUEUE_LENGTHS_PREFIX}claim:{minute}"


def tasks_by_name(name: str) -> str:
    return f"{TASKS}:name:{name}"


def tasks_by_queue(queue_name: str) -> str:
    return f"{TASKS}:queue:{queue_name}"


def task_info(task_id: str) -> str:
    """What the index keeps of a sent task (name, queue, arguments in short, send time)."""
    return f"{TASK_INFO_PREFIX}{task_id}"


def rate_bucket(node: str, task_name: str) -> str:
    """When the next task of ``task_name`` may start on worker node ``node`` (epoch seconds; absent: now)."""
    return f"{RATE_PREFIX}{node}:{task_name}"


def rate_held(node: str, task_name: str) -> str:
    """Tasks of ``task_name`` that ``node`` put back until their slot: a hash of job id -> slot."""
    return f"{RATE_HELD_PREFIX}{node}:{task_name}"


# -- RQ's, from RQ -------------------------------------------------------------------------------
def job(job_id: str) -> str:
    return Job.key_for(job_id)


#: What RQ puts before a job id to make its hash's key (``rq:job:`` unless RQ_KEY_PREFIX says else).
JOB_PREFIX = Job.key_for("")
#: What RQ puts before a queue's name to make its list's key.
QUEUE_PREFIX = Queue.redis_queue_namespace_prefix
#: The set of every queue's key.
QUEUES = Queue.redis_queues_keys


def queue(name: str) -> str:
    return f"{QUEUE_PREFIX}{name}"


def queue_name(queue_key: str) -> str:
    return queue_key.removeprefix(QUEUE_PREFIX)


#: Between a queue's name and a priority step in the name of that step's list (``default:3``);
#: ``broker_transport_options["sep"]`` replaces it (kombu's own is ``"\x06\x16"``).
PRIORITY_SEP = ":"


def priority_queue(name: str, step: int, sep: str = PRIORITY_SEP) -> str:
    """The RQ queue holding ``name``'s tasks of priority step ``step``: the queue itself for step 0.

    Each step is an RQ queue of its own (see README, Priorities), so its key is ``queue(...)`` of this.
    """
    return f"{name}{sep}{step}" if step else name


#: The set of every registered RQ worker's key.
WORKERS = REDIS_WORKER_KEYS


def worker(name: str) -> str:
    """An RQ worker's hash: birth, last heartbeat, pid, queues, its counts."""
    return f"{Worker.redis_worker_namespace_prefix}{name}"


def workers_of_queue(queue_name: str) -> str:
    """The set of the registered RQ workers' keys that consume ``queue_name``."""
    return WORKERS_BY_QUEUE_KEY % queue_name


def worker_name(worker_key: str) -> str:
    return worker_key.removeprefix(Worker.redis_worker_namespace_prefix)


def started(queue_name: str) -> str:
    """The queue's started registry (RQ's ``wip``), as ``StartedJobRegistry(name).key``."""
    return StartedJobRegistry.key_template.format(queue_name)


def scheduled(queue_name: str) -> str:
    """The queue's scheduled registry (tasks waiting for a time), as ``ScheduledJobRegistry(name).key``."""
    return ScheduledJobRegistry.key_template.format(queue_name)


#: A queue's registries, by what they hold (RQ's sorted sets beside its list).
REGISTRIES = {"started": StartedJobRegistry, "scheduled": ScheduledJobRegistry, "deferred": DeferredJobRegistry,
              "failed": FailedJobRegistry, "finished": FinishedJobRegistry, "canceled": CanceledJobRegistry}


def registry(kind: str, queue_name: str) -> str:
    """The key of a queue's registry of one ``kind`` (see :data:`REGISTRIES`)."""
    return REGISTRIES[kind].key_template.format(queue_name)


def intermediate(queue_key: str) -> str:
    """Where RQ's blocking pop parks an id between its queue and the started registry."""
    return IntermediateQueue.get_intermediate_queue_key(queue_key)
