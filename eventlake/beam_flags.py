"""Which leftover command-line flags are Beam's: the rest are typos and must not pass silently.

Beam ignores a flag no ``PipelineOptions`` class defines (it logs a warning nobody sees), so
``--max-error-rate 0`` for ``--max-error-ratio`` ran with no limit. The known flags are the ones
every registered options class adds to a parser, as Beam's own ``get_all_options`` collects them.
"""

from __future__ import annotations

import difflib


def _all_subclasses(cls) -> list[type]:
    out, todo = [], list(cls.__subclasses__())
    while todo:
        sub = todo.pop()
        out.append(sub)
        todo += sub.__subclasses__()
    return out


class _Refusal(Exception):
    pass


def _beam_parser():
    """A parser of every flag some registered Beam ``PipelineOptions`` class defines."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):  # argparse would print usage and exit
            raise _Refusal(message)

    parser = Parser(allow_abbrev=False, add_help=False)
    seen = set()
    for cls in _all_subclasses(PipelineOptions):
        if str(cls) in seen:
            continue
        seen.add(str(cls))
        try:
            cls._add_argparse_args(parser)  # noqa: SLF001 - the only way Beam exposes its flags
        except Exception:  # noqa: BLE001 - a class adding a flag another already added
            continue
    return parser


def unknown_flag_message(args: list[str], own_flags: set[str]) -> str | None:
    """One line about the first of ``args`` Beam does not take (a typo, a stray word), or None.

    ``args`` are what the job's own parser left over; ``own_flags`` are the job's flags, offered
    as suggestions beside Beam's.
    """
    if not args:
        return None
    parser = _beam_parser()
    try:
        _, unknown = parser.parse_known_args(args)
    except _Refusal as exc:
        return f"bad Beam option: {exc}"
    if not unknown:
        return None
    first = unknown[0]
    if not first.startswith("-"):
        return f"unexpected argument {first!r}"
    name = first.split("=", 1)[0]
    known = {option for action in parser._actions for option in action.option_strings}  # noqa: SLF001
    close = difflib.get_close_matches(name, sorted(own_flags | known), n=1, cutoff=0.6)
    return f"unknown flag {name}" + (f"; did you mean {close[0]}?" if close else "")
