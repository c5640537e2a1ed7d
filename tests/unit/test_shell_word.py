"""`shell_word` keeps `expand`'s rules when a real sh expands the word on the job's host."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ccd.expand import expand, shell_word
from tests.unit.shell_words import evaluated

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/u", "A_B9": "x y", "EMPTY": ""}

# text made of the pieces that matter: references, `$` in every other position,
# the characters special inside double quotes, and plain text
PIECES = st.sampled_from(
    ["$PATH", "${HOME}", "$A_B9", "$$", "$", "${", "}", "$1", "${A:-b}", "$(id)", "`id`",
     '"', "'", "\\", "\n", " ", "a", "/opt/x/bin:", "$UNSET", "${EMPTY}", "*", "~"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(PIECES, max_size=8).map("".join))
def test_sh_expands_the_word_exactly_as_expand_does(text: str) -> None:
    assert evaluated(shell_word(text), ENV) == expand(text, ENV.get)


def test_a_path_prefix_keeps_the_hosts_path() -> None:
    assert shell_word("/opt/x/bin:$PATH") == '"/opt/x/bin:${PATH}"'
