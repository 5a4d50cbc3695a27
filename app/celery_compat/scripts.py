"""Lua scripts of the lean worker: each turns several steps of a task's bookkeeping into one round trip.

They write RQ's own keys (the job hash, the queue list, the started and finished registries)
the way RQ does, so the stock ``rq worker``, RQ's maintenance and rq-dashboard keep working
on the same jobs. Every key comes in as ``KEYS`` (or, for a job whose id is only known inside
the script, as RQ's job key prefix in ``ARGV``), so ``RQ_KEY_PREFIX`` applies here too.
"""

from __future__ import annotations

#: Add a sent task to the index (every producer sends through ``Celery.send_task``). Trimming it
#: by age and count costs three commands per part, so a sender trims only every so many sends
#: (``task_index_trim_every``): the index may hold that many more tasks than its cap for a while.
#: KEYS: the whole index, the task's name's part, its queue's part, the task's info hash.
#: ARGV: task id, send time (seconds), keep seconds, keep count, name, queue, arguments in short,
#: '1' to trim now.
_INDEX = """
local function index_task(from)
    for index = from, 3 do redis.call('ZADD', KEYS[index], ARGV[2], ARGV[1]) end
    redis.call('HSET', KEYS[4], 'name', ARGV[5], 'queue', ARGV[6], 'args', ARGV[7], 'sent', ARGV[2])
    redis.call('EXPIRE', KEYS[4], ARGV[3])
    if ARGV[8] == '1' then
        local oldest = '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[3]))
        for index = 1, 3 do
            redis.call('ZREMRANGEBYSCORE', KEYS[index], '-inf', oldest)
            redis.call('ZREMRANGEBYRANK', KEYS[index], 0, -tonumber(ARGV[4]) - 1)
            redis.call('EXPIRE', KEYS[index], ARGV[3])
        end
    end
end
"""
INDEX_TASK = _INDEX + """
index_task(1)
return 1
"""

#: Send a task: index it (as INDEX_TASK), then enqueue its job as RQ's Queue.enqueue_call does
#: (write the job hash, push its id, register the queue), atomically, as one command with no
#: MULTI/EXEC around it.
#: KEYS: INDEX_TASK's four, then the set of queues, the queue key, the job key.
#: ARGV: INDEX_TASK's eight, then 1 to push at the front, the job id, then the job hash as
#: field, value, field, value...
#: A send whose reply was lost is sent again by the client (redis-py retries a command once after
#: a timeout or a dropped connection), and pushing the id a second time would run the task twice.
#: The index tells, for free: ZADD ... CH counts 0 only when the task is already there with this
#: very send's time (a Celery retry of the same id is a later send, with a later time).
#: RQ adds the queue to its set of queues on every enqueue; here only when the push found the
#: list empty (a queue with tasks in it is registered already: RQ's Queue.delete drops both), and
#: with each trim of the index, for a queue unregistered by hand while it held tasks.
SEND = _INDEX + """
if redis.call('ZADD', KEYS[1], 'CH', ARGV[2], ARGV[1]) == 0 then return 0 end
index_task(2)
redis.call('HSET', KEYS[7], unpack(ARGV, 11))
local length
if ARGV[9] == '1' then
    length = redis.call('LPUSH', KEYS[6], ARGV[10])
else
    length = redis.call('RPUSH', KEYS[6], ARGV[10])
end
if length == 1 or ARGV[8] == '1' then redis.call('SADD', KEYS[5], KEYS[6]) end
return 1
"""

#: Look through the index for tasks that match filters, in Redis, so that a rare match costs one
#: round trip rather than one per task examined. From a cursor outwards, at most ARGV[4] tasks.
#: KEYS: the index (or its name's or queue's part). ARGV: 1 where to start, as a ZRANGEBYSCORE
#: bound ('(' before a cursor, which is exclusive; '+inf' / '-inf' for none), 2 'older' or 'newer',
#: 3 how many matches, 4 how many to examine, 5 RQ's job key prefix, 6 the result document's prefix,
#: 7 the info hash's prefix, 8 queue ('' any), 9 text in the arguments, lower case ('' any),
#: 10 state ('' any), 11 where to stop, as a bound (the edge of a time range, or '-inf' / '+inf'),
#: then the RQ statuses a task in that state may have ('none' for a job that is gone).
#: Returns {id, score, id, score ...} of the matches, then the oldest and newest score examined.
SCAN_TASKS = """
local older = ARGV[2] == 'older'
local want, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local may = {}
for index = 12, #ARGV do may[ARGV[index]] = true end
local found, oldest, newest = {}, false, false
local from, stop = ARGV[1], ARGV[11]
while budget > 0 do
    local chunk
    local asked = math.min(budget, 200)
    if older then
        chunk = redis.call('ZREVRANGEBYSCORE', KEYS[1], from, stop, 'WITHSCORES', 'LIMIT', 0, asked)
    else
        chunk = redis.call('ZRANGEBYSCORE', KEYS[1], from, stop, 'WITHSCORES', 'LIMIT', 0, asked)
    end
    if #chunk == 0 then break end
    for index = 1, #chunk, 2 do
        local id, score = chunk[index], chunk[index + 1]
        budget = budget - 1
        from = '(' .. score
        if not oldest or tonumber(score) < tonumber(oldest) then oldest = score end
        if not newest or tonumber(score) > tonumber(newest) then newest = score end
        local ok = true
        if ARGV[8] ~= '' or ARGV[9] ~= '' then
            local info = redis.call('HMGET', ARGV[7] .. id, 'queue', 'args')
            if ARGV[8] ~= '' and info[1] ~= ARGV[8] then ok = false end
            local text = string.lower(info[2] or '')
            if ok and ARGV[9] ~= '' and not string.find(text, ARGV[9], 1, true) then ok = false end
        end
        if ok and ARGV[10] ~= '' then
            local status = redis.call('HGET', ARGV[5] .. id, 'status') or 'none'
            if not may[status] and status ~= 'started' and status ~= 'none' then
                ok = false
            else
                local raw = redis.call('GET', ARGV[6] .. id)
                local state = 'PENDING'
                if raw then
                    local decoded, document = pcall(cjson.decode, raw)
                    state = decoded and type(document) == 'table' and document['status'] or 'PENDING'
                end
                ok = state == ARGV[10]
            end
        end
        if ok then
            found[#found + 1] = id
            found[#found + 1] = score
            if #found / 2 >= want then budget = 0 end
        end
        if budget <= 0 then break end
    end
    if #chunk / 2 < asked then break end
end
found[#found + 1] = oldest
found[#found + 1] = newest
return found
"""

#: The job-hash fields a claim returns, in this order (worker/claimed.py builds the job from them).
CLAIM_FIELDS = ("data", "meta", "origin", "number_of_retries", "result_ttl", "celery_revoked")

#: Mark a job popped from ``queue_key`` started for this worker (its hash, and its started-registry
#: entry ``<job id>:<execution id>``) and return the claim's reply; nil when the job has no data
#: (it is gone, or is no job); a revoke mark under either prefix is reported. Both claim scripts end this way.
_CLAIM = """
local function claim_job(queue_key, job_id, job_key, registry, worker, now, score, execution_id,
                         revoked, legacy_revoked)
    local fields = redis.call('HMGET', job_key, """ + ", ".join(f"'{field}'" for field in CLAIM_FIELDS) + """)
    if not fields[1] then return nil end
    redis.call('HSET', job_key, 'status', 'started', 'started_at', now, 'worker_name', worker, 'last_heartbeat', now)
    redis.call('ZADD', registry, score, job_id .. ':' .. execution_id)
    return {queue_key, job_id, fields, redis.call('EXISTS', revoked .. job_id, legacy_revoked .. job_id)}
end
"""

#: Pop the first job id of the given queues and mark it started, in one step: no moment
#: exists in which the job is neither in a queue nor in the started registry.
#: KEYS: the queue keys, then their started registries in the same order. ARGV: worker name,
#: now (RQ's time format), registry score (now + heartbeat TTL), execution id, RQ's job key prefix,
#: then the revoke marks' prefixes.
#: Returns {queue key, job id, the job's fields the worker reads, 1 if a revoke mark exists} or nil
#: when every queue is empty. The fields are an HMGET of CLAIM_FIELDS, in that order (the data,
#: RQ's meta, origin, number_of_retries, result_ttl, celery_revoked), not the whole
#: hash: decoding ~20 fields per task was a top worker cost; the worker reads the rest only when it
#: needs them (a failure, a retry: see claimed.complete). An id whose hash has no data (the job is
#: gone, or is no job) is dropped, as before a missing one. A revoked task carries ``celery_revoked``
#: in its hash (see control.py) and has a revoke mark, so the worker learns of it here without
#: another command, even when the revoke came between the mark and the hash.
CLAIM_NEXT = _CLAIM + """
local queues = #KEYS / 2
for index = 1, queues do
    local queue_key = KEYS[index]
    while true do
        local job_id = redis.call('LPOP', queue_key)
        if not job_id then break end
        local claimed = claim_job(queue_key, job_id, ARGV[5] .. job_id, KEYS[queues + index], ARGV[1], ARGV[2],
                                  ARGV[3], ARGV[4], ARGV[6], ARGV[7])
        if claimed then return claimed end
    end
end
return nil
"""

#: Mark started a job id already taken from its queue by a blocking pop, unless maintenance has
#: meanwhile handed it back to its queue.
#: KEYS: queue key, its intermediate list (or the queue key again when there is none), its
#: started registry, the job key.
#: ARGV: job id, worker name, now, registry score, execution id, 1 when KEYS[2] must lose the id,
#: then the revoke marks' prefixes. Returns as CLAIM_NEXT.
CLAIM_GIVEN = _CLAIM + """
-- Gone from the intermediate list: maintenance found it stuck and put it back in its queue
-- (RESCUE_STUCK), so it is not ours to run; unless this is our own claim sent again after a
-- lost reply (the entry with our execution id is there).
if ARGV[6] == '1' and redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0
        and not redis.call('ZSCORE', KEYS[3], ARGV[1] .. ':' .. ARGV[5]) then
    return nil
end
return claim_job(KEYS[1], ARGV[1], KEYS[4], KEYS[3], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7], ARGV[8])
"""

#: Store a task's result document (with its TTL in seconds, 0: none) and publish it to the
#: clients waiting on its channel: every state write ends this way.
_PUBLISH_DOCUMENT = """
local function publish_document(key, document, ttl)
    if tonumber(ttl) > 0 then
        redis.call('SET', key, document, 'EX', ttl)
    else
        redis.call('SET', key, document)
    end
    redis.call('PUBLISH', key, document)
end
"""

#: Record a success: its result document (fenced as FENCED_STORE is), status, end time, out of
#: the started registry, into the finished one, and the job hash's expiry, as RQ's
#: handle_job_success does; one script call for what took two. When the job hash is kept less
#: long than the result (``worker_job_keep_seconds``), the facts the pages still need (see
#: finished.py) go into the task's index hash, if it exists (never a hash without expiry).
#: KEYS: job key, started registry, finished registry, the task's index hash, the result document.
#: ARGV: job id, execution id, ended_at, job hash TTL (0 delete, -1 keep), finished score,
#: the document ('' when no result is stored), its TTL in seconds (0: none), then the facts as
#: field, value, field, value... (none: leave the index hash alone).
#: Returns 1 when recorded, 0 when the claim was gone.
FINISH_SUCCESS = _PUBLISH_DOCUMENT + """
local function store()
    if ARGV[6] ~= '' then publish_document(KEYS[5], ARGV[6], ARGV[7]) end
end
if redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2]) == 0 then
    -- Not ours any more: maintenance took it for abandoned (or the job was deleted) and has
    -- re-queued or failed it; leave that decision alone rather than write a second outcome.
    -- With the job gone too, Redis lost its data: nobody else can run it, its result is kept;
    -- unless the index says it ended: another run succeeded and its job hash expired since.
    if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('HEXISTS', KEYS[4], 'ended') == 0 then store() end
    return 0
end
store()
local ttl = tonumber(ARGV[4])
if ttl == 0 then
    redis.call('DEL', KEYS[1])
    return 1
end
if #ARGV > 7 and redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HSET', KEYS[4], unpack(ARGV, 8)) end
redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[3], 'celery_final', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""

#: A running task's heartbeat: its started-registry entry and the job's last_heartbeat, only
#: while that entry still exists (a finished or deleted job must not be brought back).
#: KEYS: started registry, job key. ARGV: entry, new score, now (RQ's time format).
#: Returns 1 when beaten, 0 when the claim is gone while the job is still there (taken by the
#: recovery rule, or just finished), 2 when the job is gone too (Redis lost its data, or the
#: job was deleted: nobody else runs it). A job gone whose task the index (KEYS[3], the task's
#: index hash) says ended is 0: another run finished it and its job hash expired
#: (``worker_job_keep_seconds``).
BEAT = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
    redis.call('HSET', KEYS[2], 'last_heartbeat', ARGV[3])
    return 1
end
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HEXISTS', KEYS[3], 'ended') == 0 then return 2 end
return 0
"""

#: Write a task's state only while the writer still holds its claim (the fence), and never
#: bring a final state back to an earlier one.
#: The claim is the started-registry entry ``<job id>:<execution id>`` the claim scripts wrote;
#: whoever takes a job for abandoned (the recovery rule) removes it in the same step, so a
#: worker that was frozen or cut off past its heartbeat finds it gone and writes nothing.
#: Within one claim, once a final state is written (its execution id goes in the job hash as
#: ``celery_final``), a later non-final write (a late ``update_state`` from a thread of the
#: task) is refused; a new claim (a retry, a re-run) may write again.
#: KEYS: the result document, the started registry, the job hash, the task's index hash.
#: ARGV: the registry entry, the document, its TTL in seconds (0: none), 1 if final,
#: the execution id. Returns 1 when written, 0 when refused.
FENCED_STORE = _PUBLISH_DOCUMENT + """
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and (redis.call('EXISTS', KEYS[3]) == 1
        or redis.call('HEXISTS', KEYS[4], 'ended') == 1) then
    -- The claim was taken: the job is queued again, failed, or run by another worker, or that
    -- run already succeeded and its job hash expired (the index keeps 'ended', finished.py).
    -- (With the job gone and no end known, Redis lost its data, or the job was deleted: nobody
    -- else can run it, and its outcome is still worth storing.)
    return 0
end
if ARGV[4] == '1' then
    -- (never a bare hash for a job deleted meanwhile: it would have no expiry)
    if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSET', KEYS[3], 'celery_final', ARGV[5]) end
elseif redis.call('HGET', KEYS[3], 'celery_final') == ARGV[5] then
    return 0
end
publish_document(KEYS[1], ARGV[2], ARGV[3])
return 1
"""

#: Hand a job id stuck in RQ's intermediate list (its worker died between the blocking pop
#: and the claim) back to the front of its queue, once: CLAIM_GIVEN refuses an id no longer there.
#: KEYS: the intermediate list, the queue. ARGV: the job id. Returns 1 when moved.
RESCUE_STUCK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""

#: A task's start slot under its rate limit (Celery's token bucket of capacity 1, as a "next free
#: slot": GCRA). The bucket holds the time from which the next task may start; each task takes
#: max(that, now) and moves it one interval on, so tasks start evenly spaced and an idle bucket
#: lets the next one start at once. A task held earlier by this node (put back until its slot)
#: is in the held hash: it takes the slot it was given, and is not charged again.
#: KEYS: the node's bucket for the task's name, the node's held hash for it.
#: ARGV: the job id, now (epoch seconds), the interval (seconds). Returns the slot (epoch seconds).
RATE_SLOT = """
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
    redis.call('HDEL', KEYS[2], ARGV[1])
    return held
end
local now, every = tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
-- The key lives until the bucket is full again: then its absence means the same thing.
redis.call('SET', KEYS[1], string.format('%.6f', slot + every), 'PX', math.ceil((slot + every - now) * 1000) + 1000)
return string.format('%.6f', slot)
"""

#: Take a dead work process's registration out of RQ's worker lists, unless it is no longer its:
#: run late (Redis was down), the name may by then be a live successor's (``-n NAME -c 1``).
#: KEYS: the worker hash, RQ's set of workers, then the worker sets of every list it popped.
#: ARGV: the dead process's pid. Returns 1 when removed, 0 when the hash is another process's.
UNREGISTER_DEAD = """
local pid = redis.call('HGET', KEYS[1], 'pid')
if pid and pid ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for index = 2, #KEYS do redis.call('SREM', KEYS[index], KEYS[1]) end
return 1
"""
