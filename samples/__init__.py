"""Runnable choreographed agent pipelines, with honest fault injection.

    python -m samples.recruitment --nats nats://127.0.0.1:4222 --rate 2 --faults demo
    python -m samples.orders --nats nats://127.0.0.1:4222 --rate 2 --faults drop=0.05

``samples.recruitment``: intake → CV parser → scorer → CRM duplicate check → router.
``samples.orders``: inventory, fraud and payment in parallel, shipping waits for all three.
Faults, and the ground truth of those injected, are described in ``samples.injector``.
"""
