"""Loads every channel plugin so it can register its sender and routes."""

from __future__ import annotations

from fastapi import APIRouter


def load_channels() -> list[APIRouter]:
    from otklik.channels.api_channel import plugin as api_channel

    api_channel.register()
    from otklik.channels.base import add_plugin
    from otklik.channels.email.plugin import PLUGIN as email_plugin

    add_plugin(email_plugin)
    # VK, WhatsApp, phone, web forms (issue 4, D2): webhooks (hidden from the schema) and their APIs
    from otklik.channels.phone import plugin as phone
    from otklik.channels.vk import plugin as vk
    from otklik.channels.webforms import plugin as webforms
    from otklik.channels.whatsapp import plugin as whatsapp

    for messenger in (vk, whatsapp, phone, webforms):
        messenger.register()
    messenger_routers = [vk.router, whatsapp.router, whatsapp.api_router, phone.router, phone.api_router,
                         webforms.router]
    # channel framework, Telegram and MAX (issue 4, D1): the admin API of every plugin's accounts
    from otklik.channels import admin
    from otklik.channels import jobs as _channel_jobs  # noqa: F401  (registers the Huey tasks)
    from otklik.channels.max.plugin import PLUGIN as max_plugin
    from otklik.channels.telegram import jobs as _telegram_jobs  # noqa: F401
    from otklik.channels.telegram.plugin import PLUGIN as telegram_plugin

    plugin_routers = [admin.router]
    for plugin in (telegram_plugin, max_plugin):
        add_plugin(plugin)
        if plugin.router is not None:
            plugin_routers.append(plugin.router)
    # Viber and Instagram (issue 18): webhooks, and the signed links their media servers fetch files from
    from otklik.channels import media_links
    from otklik.channels.instagram import plugin as instagram
    from otklik.channels.viber import plugin as viber

    viber.register()
    instagram.register()
    plugin_routers += [viber.router, instagram.router, instagram.api_router, media_links.router]
    return [api_channel.router, *messenger_routers, *plugin_routers]


def start_background() -> list[object]:
    """Start every plugin's pollers and the sweep of unfinished inbound events (in `otklik worker`, and in
    `otklik serve` with the embedded worker). Returns the started loops (each has `.stop()`)."""
    from otklik.channels import jobs
    from otklik.channels.base import plugins
    from otklik.platform.jobs import Periodic, huey

    if huey.immediate:  # tests: jobs run inline and tests drive pollers themselves
        return []
    loops: list[object] = [Periodic(jobs.sweep_events, 30.0).start()]
    for plugin in plugins().values():
        for poller in plugin.pollers:
            loops.append(Periodic(poller, plugin.poll_seconds).start())
    return loops
