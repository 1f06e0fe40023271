"""Text to speech, with no sockets and no aiohttp: the sentence chunker (:mod:`.chunker`, its
rules in :mod:`.sentence_ends` and :mod:`.abbreviations`) and what is spoken
(:mod:`.speakable`), the :class:`~.turn.Turn` that drives an LLM stream through the chunker into
TTS backends, its pacing (:mod:`.pacing`), silence limits (:mod:`.silence`), the conversation
history (:mod:`.history`) and MP3 helpers (:mod:`.audio`).

May import: the top-level modules (config, errors, logs, protocol, registry) and the backends'
Protocols (``voicechat.llm.base``, ``voicechat.tts.base``). Never the server or the client.
"""
