"""The network side of Session Supervisor.

Layers, from the socket inwards: ``http`` (trio listener, h11, wsproto), ``engineio`` (Engine.IO v4),
``socketio`` (Socket.IO v5 with a python-socketio-like API), ``gateway`` (the OpenHands session protocol on
top of ``actors``), ``client`` (a trio-native Socket.IO client), ``cli`` (the ``supervisor`` command).
Nothing in ``actors`` may import from here; everything here may import ``actors``.
"""
