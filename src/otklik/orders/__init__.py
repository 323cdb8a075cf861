"""Orders from the shop's system: pushed to the API (or a CSV) or pulled from the shop's order-lookup URL."""
