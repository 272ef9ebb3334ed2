"""The worker's consumer: the stock one, made to survive its broker restarting.

(The apps add the rest: ``ops.worker`` marks the worker alive from its own timer, and
``exports`` has it pick up stalled runs as it starts.)"""

from __future__ import annotations

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.common import ignore_errors


class Consumer(CeleryConsumer):
    """The stock consumer, closing a lost broker connection in an order that cannot crash.

    On a lost connection celery 5.7.0 first collects the connection, which drops its
    transport's client, then closes it. Closing the default channel restores the unacknowledged
    messages (an export run in flight, ``acks_late``) through that client, fails with
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``, and the worker exits
    ("Unrecoverable error"). Closed first, while the client is there, the channel's restore
    fails as a connection error, which celery ignores, and the consumer reconnects. The run
    itself is safe either way: it lives in the database and its claim decides who runs it.
    """

    def on_connection_error_after_connected(self, exc):
        channel = getattr(self.connection, "_default_channel", None)
        if channel is not None:
            ignore_errors(self.connection, channel.close)
        super().on_connection_error_after_connected(exc)
