"""The embeddable customer chat widget: its settings, visitors, page visits, greetings and public API."""
