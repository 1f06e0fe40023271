"""Benchmarks: time to first audio, stop and pause latency, CPU and memory, and Pipecat side by side.

Run ``make bench`` (or ``.venv/bin/python -m bench``); ``--quick`` is the smoke run of ``make test``.
Modules that the Pipecat venv imports (``workload``, ``stats``) use the standard library only.
"""
