"""The web layer: the HTTP app's pages and sockets. Nothing imports it; it never writes SQL."""
