"""Order processing with fan-out and fan-in.

    python -m samples.orders --nats nats://127.0.0.1:4222 --rate 2 --faults demo

``orders.created`` goes to inventory, fraud scoring and payment in parallel;
shipping waits for all three results, then emits ``orders.shipped``.
"""
