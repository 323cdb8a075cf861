"""Loads every channel plugin so it can register its sender and routes."""

from __future__ import annotations

from fastapi import APIRouter


def load_channels() -> list[APIRouter]:
    from otklik.channels.api_channel import plugin as api_channel

    api_channel.register()
    return [api_channel.router]
