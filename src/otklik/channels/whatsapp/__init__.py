"""WhatsApp Business via the Cloud API (Meta Graph API)."""
