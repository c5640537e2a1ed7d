"""YAML loading that remembers where everything was written.

`load_yaml` turns workflow text into plain Python data (dict, list, str, int,
float, bool, None, and the odd date or bytes) plus a `Positions` map from key
paths to 1-based (line, column), so that validation can point at the exact
spot of every problem.

It is built on the YAML *event* stream (libyaml's C parser when available) with
our own small, iterative composer instead of ``yaml.safe_load``, because we
need things safe_load does not do:

* duplicate keys are reported (every one, with both positions) instead of the
  last one silently winning;
* aliases are not copied: an aliased value is shared and only its size is
  counted, so an alias bomb ("billion laughs") is refused after reading its few
  hundred bytes, without building anything large (``<<`` merges do copy keys,
  and are bounded by `MAX_MERGED_KEYS`);
* nesting depth is bounded, so neither this code nor anything that later walks
  the data can run out of stack (libyaml's own composer segfaults on deeply
  nested input; Python's raises RecursionError);
* plain ``1:30`` stays the string "1:30" instead of YAML 1.1's base-60 number 90
  (YAML 1.2 dropped base 60; in a duration or a Slurm time it is a trap).

Data that came through an alias is shared between the places that use it, so
consumers must treat the result as read-only.

Most files are plain mappings, lists and scalars without a single problem, and
recording a position for every key and value costs as much as building the
data. So a file is first composed by a lean loop that records nothing
(`ccd.spec.quick`); it gives up on anything out of the ordinary (anchors,
aliases, merges, duplicate keys, anything that is a problem) and the full
composer (`ccd.spec.composer`) takes over, from the start. Positions are found
the first time somebody asks for one (`LazyPositions`: a second, full parse of
the same text), which for a valid file is never.

The two composers live apart, one job each, and agree because both take every
scalar, tag and depth rule from `ccd.spec.yaml_rules`; `tests/unit/
test_spec_loader.py` checks that they build the same data. This module owns the
entry point: the size limit, decoding, and choosing the composer.
"""

from __future__ import annotations

from typing import Final

from ccd.errors import Problem, SpecError
from ccd.spec.composer import compose
from ccd.spec.positions import Document, line_col
from ccd.spec.quick import GiveUp, LazyPositions, quick_compose

__all__ = ["MAX_BYTES", "Document", "load_yaml", "too_large"]

#: files larger than this are refused before parsing
MAX_BYTES: Final = 32 * 1024 * 1024


def load_yaml(text: str | bytes, source: str = "<string>") -> Document:
    """Load one YAML document; raise SpecError when it cannot be read at all."""
    decoded = _decode(text, source)
    try:
        data = quick_compose(decoded)
    except GiveUp:
        return compose(decoded, source)
    return Document(data, LazyPositions(decoded, source))


def too_large(source: str, size: int) -> SpecError:
    """The error for a workflow of `size` bytes over `MAX_BYTES`."""
    return SpecError(
        [
            Problem(
                source,
                0,
                0,
                "file-too-large",
                f"workflow file is {size / 2**20:.1f} MiB; the limit is "
                f"{MAX_BYTES // 2**20} MiB. Keep data in separate files and "
                "pass their paths to the jobs",
            )
        ]
    )


# --- decoding -----------------------------------------------------------------


def _decode(text: str | bytes, source: str) -> str:
    if len(text) > MAX_BYTES:
        raise too_large(source, len(text))
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            prefix = text[: exc.start].decode("utf-8", "replace")
            line, column = line_col(prefix, len(prefix))
            raise _single(
                source,
                line,
                column,
                "not-utf8",
                f"invalid UTF-8 (byte 0x{text[exc.start]:02x}); save the workflow file as UTF-8",
            ) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, column = line_col(text, exc.start)
        raise _single(
            source,
            line,
            column,
            "not-utf8",
            "text contains a lone surrogate character, which is not valid Unicode",
        ) from None
    return text.removeprefix("\ufeff")


def _single(source: str, line: int, column: int, code: str, message: str) -> SpecError:
    return SpecError([Problem(source, line, column, code, message)])
