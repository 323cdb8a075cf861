"""Reports: the figures a support manager reads (docs/metrics.md), computed from conversations, SLA timers,
the assistant's decisions and survey answers. Reads only; never writes another domain's tables."""
