"""The job a lean worker claims, built from the few job-hash fields its task needs.

The claim scripts (scripts.CLAIM_NEXT, CLAIM_GIVEN) return an HMGET of :data:`CLAIM_FIELDS`
rather than the whole hash: a no-op task's run reads nothing else, and decoding ~20 fields per
task (RQ's ``Job.__init__`` and ``restore``: a protocol check of the serializer, ``strptime``
of dates nobody reads) was a top cost of the worker. What the claim left out is read when first
wanted: RQ's failure and retry paths save the whole job (``Job.save`` writes every field, so a
job missing some would overwrite them with defaults), and a task may look at its RQ job
(``rq.get_current_job()``). :class:`~.guard.TaskJob` reads the rest of the hash on the first
access to an attribute the claim did not set (:func:`complete`); the fields the worker holds
(changed since, maybe: the arguments of a retry, the meta of a requeue) keep its values.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from rq.job import UNEVALUATED, Job, JobStatus, validate_job_id
from rq.job import logger as RQ_JOB_LOG

from ..scripts import CLAIM_FIELDS

#: Set in a claimed job's ``__dict__`` while the rest of its hash is unread.
PARTIAL = "_claim_partial"


def claimed_job(job_class: type[Job], job_id: str, connection: Any, serializer: Any, values: list[Any],
                started_at: datetime, worker_name: str) -> Job:
    """A started job from the claim's ``values`` (:data:`CLAIM_FIELDS`), the rest of its hash left unread.

    ``serializer`` is the worker's, already resolved: ``Job.__init__`` would check it again each time.
    """
    validate_job_id(job_id)  # an id from a list anyone can write to
    data, meta, origin, retries, result_ttl, revoked = values
    job = job_class.__new__(job_class)
    # RQ compresses the data, the adapter's sender only above a size (amqp.COMPRESS_ABOVE). A zlib
    # stream's first byte says method 8 in its low bits; without it RQ's try would fail anyway.
    if data[:1] and data[0] & 0x0F == 8:
        try:
            data = zlib.decompress(data)
        except zlib.error:
            pass
    try:
        meta_value, unreadable = (serializer.loads(meta) if meta else {}), None
    except Exception:  # noqa: BLE001 - depends on the serializer; RQ's restore keeps such bytes the same way
        meta_value, unreadable = {"unserialized": meta}, meta
    job.__dict__.update({
        PARTIAL: True, "connection": connection, "_id": job_id, "serializer": serializer, "log": RQ_JOB_LOG,
        "_data": data, "_func_name": UNEVALUATED, "_instance": UNEVALUATED, "_args": UNEVALUATED,
        "_kwargs": UNEVALUATED, "meta": meta_value, "_unreadable_meta": unreadable,
        "origin": origin.decode() if origin else "",
        "number_of_retries": int(retries) if retries else None,
        "result_ttl": int(result_ttl) if result_ttl else None,
        "started_at": started_at, "worker_name": worker_name, "_status": JobStatus.STARTED,
        "revoked": revoked is not None,
    })
    if not hasattr(job_class, "complete_claim"):  # a job class without the lazy read: read it all now
        complete(job)
    return job


def complete(job: Job) -> None:
    """Read the rest of a claimed job's hash, once (nothing for a job read whole); the held fields win.

    The full state is built aside and then merged in: the heartbeat thread reads the job's
    ``origin`` meanwhile, which must never be seen reset to a default.
    """
    if not job.__dict__.get(PARTIAL):
        return
    raw = job.connection.hgetall(job.key)  # may raise (an outage): the job stays partial, to try again
    job.__dict__[PARTIAL] = False  # from here on a missing attribute is just missing (no second read)
    held = dict(job.__dict__)
    full = Job.__new__(type(job))
    Job.__init__(full, held["_id"], connection=job.connection, serializer=job.serializer)
    if raw.get(b"data") is not None:  # gone meanwhile (deleted): RQ's defaults for what was not held
        full.restore(raw)
    state = full.__dict__
    state.update(held)
    job.__dict__.update(state)


__all__ = ["CLAIM_FIELDS", "claimed_job", "complete"]
