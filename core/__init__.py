"""The bottom layer: pure modules (timing, policies, inputs: no Django) and small database and process helpers."""
