"""`falsifiers`: contracts whose promises are checked by tests that ran and could fail."""
