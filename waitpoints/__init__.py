"""Waitpoints: where a run parks until a token is completed, an event arrives or a timer fires."""
