"""Otklik: self-hosted omnichannel customer support with an offline AI operator."""

__version__ = "0.1.0"
