"""MAX messenger bot channel (platform-api.max.ru): webhook subscription with a secret, replies with buttons."""
