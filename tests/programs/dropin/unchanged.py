"""A Celery program as Celery's documentation writes it: it imports celery and kombu, nothing else."""

import os

from celery import Celery, shared_task
from celery.utils.log import get_task_logger
from kombu import Exchange, Queue

app = Celery("unchanged", broker=os.environ["DROPIN_BROKER"], backend=os.environ["DROPIN_BROKER"])
app.conf.task_queues = (Queue("high", Exchange("high"), routing_key="high"), Queue("low"))
app.conf.task_default_queue = "low"
logger = get_task_logger(__name__)


@shared_task
def mul(x, y):
    logger.info("mul %s %s", x, y)
    return x * y
