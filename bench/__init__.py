"""Benchmarks: time to first audio, stop and pause latency, CPU and memory; Pipecat side by side.

Run ``make bench`` (or ``.venv/bin/python -m bench``); ``--quick`` is ``make test``'s smoke run.
Modules that the Pipecat venv imports (``workload``, ``stats``) use the standard library only.
"""
