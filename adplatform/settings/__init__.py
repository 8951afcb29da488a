"""Settings package: base.py holds everything read from the environment; local/test/
production only override what differs per deployment."""
