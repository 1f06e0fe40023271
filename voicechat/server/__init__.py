"""The aiohttp face: the app and its routes (:mod:`.app`), one module per wire protocol
(:mod:`.ws` for the native WebSocket protocol, :mod:`.http_speak` for ``POST /v1/speak``), each
driving the same :class:`~voicechat.pipeline.turn.Turn`; sessions, their outbox and resume,
the gates every route passes (:mod:`.gates`: Host, token, Origin, JSON only, seats),
access, limits, metrics, the collector's tuning, and the listening socket of ``voicechat serve``
(:mod:`.listener`: connections per address, slow headers, the loop's error log).

May import: the top-level modules, the pipeline and the backends. Never the client.
"""
