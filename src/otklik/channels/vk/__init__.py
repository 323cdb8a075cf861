"""VK community messages and post comments via the Callback API; replies via messages.send / wall.createComment."""
