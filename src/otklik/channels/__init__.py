"""Channel plugins: one sub-package per channel (inbound: verify, parse, normalise; outbound: deliver).

Channels sit on top of the domains: they call `conversations.service.receive()` and register senders with
`conversations.outbox`; no domain imports a channel.
"""
