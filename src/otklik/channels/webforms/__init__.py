"""Web forms on the customer's own site: contact and callback forms posting to Otklik."""
