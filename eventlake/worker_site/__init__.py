"""A folder put on the PYTHONPATH of local Beam workers; see sitecustomize.py."""
