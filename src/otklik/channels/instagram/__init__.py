"""Instagram direct messages and comments (Meta Graph API, Instagram messaging)."""
