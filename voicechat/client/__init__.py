"""Everything the CLI needs to talk to a server and play audio: the WebSocket connection
(:mod:`.connection`), a conversation of turns (:mod:`.conversation`), the terminal views
(:mod:`.console`), playback (:mod:`.playback`) and audio files (:mod:`.audio_file`).

May import: the top-level modules and the pipeline's audio helpers. Never the server, except
through :func:`voicechat.client.local_server.local_server`, the one door to an in-process server.
"""
