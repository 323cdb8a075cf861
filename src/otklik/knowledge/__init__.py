"""Knowledge-base articles the assistant answers from and the help center shows."""
