"""The AI operator: language, understanding, retrieval, decision, hand-off, agent assist."""
