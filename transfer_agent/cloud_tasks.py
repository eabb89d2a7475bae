"""The security cloud's Celery application: queue topology, settings, and the one task.

Only small JSON messages cross RabbitMQ (job id, attempt, relative paths, the policy); files stay in
the shared directory (blobstore.py) and results go to the ledger. Settings, from Celery's issues on
lost and duplicated tasks (billiard #273, celery #6760, #7918):
- `task_acks_late` + `task_reject_on_worker_lost`: a message is acked only after the task ran; a
  worker node killed mid-task gives it back to the queue instead of losing it.
- prefetch 1: a node holds one waiting message per slot, not a batch another node could run.
- publisher confirms: `apply_async` returns only once RabbitMQ has the message.
- quorum queue with `x-delivery-limit`: a file that kills every worker that takes it is
  redelivered at most N times, then dead-lettered to `cdr.dead`; the serve node reads that queue
  and blocks the job (fail closed) instead of looping forever.
- no result backend: the ledger is the source of truth. Duplicates (a message redelivered while a
  cut-off worker still runs it) are harmless: the attempt number fences the ledger, and the atomic
  rename of the output folder admits one copy (cloud_worker.py).
"""
from __future__ import annotations

from typing import Any

from . import schema

schema.register("cloud", """
CREATE TABLE IF NOT EXISTS cloud_results (
    job_id     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    result     TEXT NOT NULL,           -- FileResult JSON, outputs relative to the attempt's folder
    worker     TEXT NOT NULL,           -- host:pid of the worker node
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
""")

QUEUE = "cdr"
DEAD_EXCHANGE = "cdr.dlx"
DEAD_QUEUE = "cdr.dead"
TASK = "transfer_agent.process"
DELIVERY_LIMIT = 3


def queues(prefix: str = "", delivery_limit: int = DELIVERY_LIMIT) -> tuple[Any, Any]:
    """(work queue, dead-letter queue) as kombu objects; `prefix` separates appliances (and tests)."""
    from kombu import Exchange, Queue

    dlx = Exchange(prefix + DEAD_EXCHANGE, type="direct", durable=True)
    dead = Queue(prefix + DEAD_QUEUE, dlx, routing_key=prefix + DEAD_QUEUE, durable=True,
                 queue_arguments={"x-queue-type": "quorum"})
    work = Queue(prefix + QUEUE, Exchange(prefix + QUEUE, type="topic", durable=True), routing_key=prefix + QUEUE,
                 durable=True, queue_arguments={
                     "x-queue-type": "quorum",
                     "x-delivery-limit": delivery_limit,
                     "x-dead-letter-exchange": prefix + DEAD_EXCHANGE,
                     "x-dead-letter-routing-key": prefix + DEAD_QUEUE,
                     "x-dead-letter-strategy": "at-least-once",
                     "x-overflow": "reject-publish"})
    return work, dead


def make_app(broker: str, prefix: str = "", delivery_limit: int = DELIVERY_LIMIT) -> Any:
    from celery import Celery

    work, dead = queues(prefix, delivery_limit)
    app = Celery("transfer_agent", broker=broker, set_as_current=False)
    app.conf.update(
        task_queues=[work],
        task_default_queue=work.name,
        task_default_exchange=work.exchange.name,
        task_default_routing_key=work.routing_key,
        task_routes={TASK: {"queue": work.name, "routing_key": work.routing_key}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # an exception inside the task is answered, not retried
        task_ignore_result=True,
        result_backend=None,
        worker_prefetch_multiplier=1,
        worker_detect_quorum_queues=True,  # no global QoS on quorum queues
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        broker_heartbeat=10,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
    )
    app.conf.cloud_dead_queue = dead
    return app
