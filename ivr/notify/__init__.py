"""Outgoing notifications over the network (adapter layer): email today.

The domain calls these through small protocols (a ``Notifier``) and tests
give it fakes; only the entry points wire the real senders.
"""
