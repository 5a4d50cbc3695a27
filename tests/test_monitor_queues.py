"""The Queues page (/queues): lengths now and over time, and per task name throughput and run time graphs.

The figures come from counters the workers keep in Redis, in hashes with a TTL (bounded whatever the
traffic), flushed with their heartbeat: no Prometheus and no event stream needed. Real Redis, real
workers; the graphs are inline SVG with their values in a table.
"""

from __future__ import annotations

import re

import pytest

from app.celery_compat import keys, series
from app.celery_compat.series import RESOLUTIONS, TaskSeries, read_queue_lengths, read_series, sample_queues

NOON = 1_780_000_200.0  # a minute boundary (and a quarter-hour one)


def flush(conn, counted: TaskSeries) -> None:
    with conn.pipeline(transaction=False) as pipe:
        counted.flush(pipe)
        pipe.execute()


def test_task_ends_are_counted_per_minute_and_per_quarter_hour_by_name_and_outcome(redis_conn):
    # Given a worker's counts: two successes and a failure at noon, a retry a minute later
    counted = TaskSeries()
    counted.observe("proj.add", 0.5, "succeeded", now=NOON + 1)
    counted.observe("proj.add", 1.5, "succeeded", now=NOON + 30)
    counted.observe("proj.add", 4.0, "failed", now=NOON + 59)
    counted.observe("proj.add", 2.0, "retried", now=NOON + 61)
    # When it flushes them (with its heartbeat)
    flush(redis_conn, counted)
    # Then the last hour has them in two one-minute buckets, with their mean run time
    hour = read_series(redis_conn, "hour", now=NOON + 90)["proj.add"]
    assert len(hour) == 60 and hour[-1].start == NOON + 60
    assert (hour[-2].succeeded, hour[-2].failed, hour[-2].mean_runtime) == (2, 1, 2.0)
    assert (hour[-1].retried, hour[-1].done) == (1, 1)
    # And the last day has them all in one quarter-hour bucket
    day = read_series(redis_conn, "day", now=NOON + 90)["proj.add"]
    assert len(day) == 96 and day[-1].done == 4 and day[-1].seconds == pytest.approx(8.0)
    # And nothing is counted twice by a second flush
    flush(redis_conn, counted)
    assert read_series(redis_conn, "day", now=NOON + 90)["proj.add"][-1].done == 4


def test_every_bucket_expires_so_the_counters_stay_bounded(redis_conn):
    counted = TaskSeries()
    counted.observe("proj.add", 0.1, "succeeded", now=NOON)
    flush(redis_conn, counted)
    for resolution in RESOLUTIONS.values():
        ttl = redis_conn.ttl(keys.series(resolution.step, int(NOON)))
        assert 0 < ttl <= resolution.keep


def test_queue_lengths_are_sampled_once_a_minute_whoever_asks_and_kept_a_day(redis_conn, celery_app):
    from tests import compat_tasks

    # Given three tasks waiting in a queue
    for number in range(3):
        compat_tasks.add.delay(number, 1)
    # When two workers try to sample the same minute, one does
    assert sample_queues(redis_conn, now=NOON) is True
    assert sample_queues(redis_conn, now=NOON + 20) is False
    # Then the queue's sample says three waiting, none running
    assert read_queue_lengths(redis_conn, ["celery"], NOON - 60)["celery"] == [series.Sample(int(NOON), 3, 0)]
    # And a sample older than a day is dropped by the next one
    assert sample_queues(redis_conn, now=NOON + series.SAMPLES_KEPT + 60) is True
    assert [sample.minute for sample in read_queue_lengths(redis_conn, ["celery"], 0)["celery"]] == [
        int(NOON + series.SAMPLES_KEPT + 60)]
    assert 0 < redis_conn.ttl(keys.queue_lengths("celery")) <= series.SAMPLES_KEPT


def test_a_worker_counts_its_tasks_for_the_graphs_and_the_page_draws_them(client, celery_app, burst_worker):
    from tests import compat_tasks

    # Given a worker that ran three additions and a failure
    for number in range(3):
        compat_tasks.add.delay(number, 1)
    compat_tasks.fail.delay()
    burst_worker()
    # When the Queues page is opened
    page = client.get("/queues").get_data(as_text=True)
    # Then each task name has a throughput graph and a run time graph, drawn as SVG bars
    card = re.search(r'<section class="card task-charts"[^>]*data-task="tests.compat_tasks.add">(.*?)</section>',
                     page, re.S).group(1)
    assert "3 ended, 0 failed" in card
    assert '<figure class="chart" id="throughput-tests.compat_tasks.add">' in card
    assert re.search(r'<rect class="bar bar-succeeded"[^>]*><title>[^<]*: 3 succeeded</title>', card)
    assert '<figure class="chart" id="runtime-tests.compat_tasks.add">' in card
    # And their values are in a table too, for screen readers and for reading exact figures
    assert re.search(r'<tbody><tr><th scope="row"><time datetime="[^"]+"[^>]*>[^<]+</time></th>'
                     r"<td>3</td><td>0</td><td>0</td><td>\d\.\d{3} s</td></tr></tbody>", card)
    assert "1 ended, 1 failed" in page and 'bar bar-failed' in page


def test_the_page_shows_every_queues_lists_now(client, celery_app, burst_worker):
    from tests import compat_tasks

    # Given a queue with one failed task and two waiting
    compat_tasks.fail.delay()
    burst_worker()
    compat_tasks.add.delay(1, 1)
    compat_tasks.add.delay(2, 2)
    # Then the page counts each list of the queue
    page = client.get("/queues").get_data(as_text=True)
    row = re.search(r'<tr data-queue="celery">(.*?)</tr>', page, re.S).group(1)
    assert '"count-queued">2<' in row and '"count-failed">1<' in row and '"count-started">0<' in row


def test_the_page_draws_a_queues_length_over_the_last_hour_and_day(client, redis_conn, celery_app):
    from tests import compat_tasks

    # Given a sample of a queue with two tasks waiting
    compat_tasks.add.delay(1, 1)
    compat_tasks.add.delay(2, 2)
    assert sample_queues(redis_conn)
    # Then both windows draw it, with the value in the table
    for window in ("hour", "day"):
        page = client.get(f"/queues?window={window}").get_data(as_text=True)
        chart = re.search(r'<figure class="chart" id="length-celery">(.*?)</figure>', page, re.S).group(1)
        assert re.search(r'<rect class="bar bar-queued"[^>]*><title>[^<]*: 2 queued</title>', chart)
        assert "<td>2</td><td>0</td>" in chart
    assert client.get("/queues?window=year").status_code == 404


def test_a_task_name_with_spaces_still_gets_valid_chart_ids(client, redis_conn):
    counted = TaskSeries()
    counted.observe("nightly report", 1.0, "succeeded")
    flush(redis_conn, counted)
    page = client.get("/queues").get_data(as_text=True)
    assert 'id="throughput-nightly-report"' in page and 'aria-labelledby="throughput-nightly-report-label"' in page


def test_with_nothing_run_the_page_says_so_and_metrics_still_answer(client, redis_conn):
    page = client.get("/queues").get_data(as_text=True)
    assert "No task ended in this window." in page and "No queue yet" in page
    assert client.get("/metrics").status_code == 200


def test_the_counters_cost_no_redis_command_per_task(celery_app, burst_worker, monkeypatch):
    """Counted in memory and flushed with the heartbeat: a hundred tasks add a few commands in all."""
    from tests import compat_tasks

    # Given a hundred tasks, and a count of the commands the series' flushes queue
    queued = []
    flush = TaskSeries.flush

    def counting_flush(self, pipe):
        before = len(pipe.command_stack)
        flush(self, pipe)
        queued.append(len(pipe.command_stack) - before)

    monkeypatch.setattr(TaskSeries, "flush", counting_flush)
    for number in range(100):
        compat_tasks.add.delay(number, 1)
    # When a worker runs them
    burst_worker()
    # Then the series cost per flush 2 resolutions x (succeeded, seconds, EXPIRE), at most two
    # buckets each (a minute that turned meanwhile), and far from one command per task
    assert sum(queued) <= 6 * 2 * len(queued) and sum(queued) < 100 / 4, queued
    assert sum(queued) > 0
