"""Phone: callback requests (API, widget, web forms) and a generic telephony webhook that logs calls."""
