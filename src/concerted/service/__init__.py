"""``concerted serve``: the report-queue guard, a durable service that scores every
report as it arrives.

==================  ==========================================================
module              what it holds
==================  ==========================================================
``base``            the intake-log protocol: append durably, idempotent, replay
``sqlite``          the embedded log: SQLite, WAL, ``synchronous=FULL``
``jetstream``       the log on a NATS JetStream server, keyed by target
``intake``          parsing, contract checks and the group-committing writer
``state``           the online scorer and the targets' views; snapshots
``arrayscore``      the online scorer over arrays: ids numbered, batches scored
``kernels``         its compiled per-report loop (numba)
``fastscore``       the same scores on Python scalars: the reference it is held to
``hindsight``       the batch brigade stage over the recent reports, scheduled
``auth``            hashed bearer tokens with scopes; the rate limit
``app``             the Starlette routes; ``openapi`` their document
``metrics``         Prometheus metrics; ``settings`` the TOML and options
``server``          uvicorn
==================  ==========================================================

See docs/service.md.
"""
