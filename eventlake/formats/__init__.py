"""Source formats: one module (or small package) per external system.

Each holds all eventlake knows of its system: its event readers (``EventFormat``), its catalog
readers (``CatalogFormat``) and its rules. ``base`` has the contract and the registry; formats
register by name, and other packages add theirs through the ``eventlake.formats`` entry points.
"""
