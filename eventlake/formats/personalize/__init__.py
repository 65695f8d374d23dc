"""Amazon Personalize: everything eventlake knows of its files and API bodies.

- ``csv_files``: the bulk import's interactions CSV (``--format personalize``) and items CSV
  (``--catalog-format personalize-items``);
- ``api_bodies``: PutEvents and PutActionInteractions request bodies, one per line
  (``--format personalize-events``).
"""

from eventlake.formats.personalize.api_bodies import PersonalizeEvents
from eventlake.formats.personalize.csv_files import PersonalizeInteractions, PersonalizeItems

__all__ = ["PersonalizeEvents", "PersonalizeInteractions", "PersonalizeItems"]
