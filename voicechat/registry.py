"""Backends chosen by name: a registry maps each name to ``"module:factory"``, imported only
when that backend is used, so an unused backend (and its library) costs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from voicechat.errors import ConfigError


def load_factory(registry: Mapping[str, str], name: str, *, kind: str) -> Callable[..., Any]:
    """The factory registered as ``name``; a :class:`ConfigError` naming the known ones else."""
    target = registry.get(name)
    if target is None:
        raise ConfigError(f"unknown {kind} backend {name!r}; known: {', '.join(sorted(registry))}")
    module_name, _, factory_name = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), factory_name)
    return factory
