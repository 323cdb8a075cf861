"""The API channel: integrators post customer messages to /api/v1/inbound and get replies on a webhook."""
