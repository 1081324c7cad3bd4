"""Shells: the entry points people and processes use (admin, commands, Celery tasks).

Each is thin: it reads the clock once, calls one service and maps its errors.
"""
