"""The format contract: options are checked by name, and a format written before formats took
options (an ``__init__(self)`` of its own) still works."""

from __future__ import annotations

import pytest

from eventlake.formats import base
from eventlake.formats.base import EventFormat, FormatOptionError, get_format


def test_a_format_with_an_old_init_still_gets_the_import_settings(monkeypatch):
    base.format_names()  # the built-in formats registered first: this test adds one and takes it away again

    class OldStyle(EventFormat):
        name, suffixes = "old-style", (".old",)

        def __init__(self):
            self.ready = True

        def read_range(self, byte_range, block_bytes):
            return iter(())

    monkeypatch.setitem(base._registry, OldStyle.name, OldStyle)  # noqa: SLF001 - registered for this test only
    made = get_format("old-style", event_type_map={"a": "b"})
    assert made.ready and made.event_type_map == {"a": "b"} and made.options == {}
    with pytest.raises(FormatOptionError, match="k: not an option of the old-style format"):
        get_format("old-style", {"k": 1})
