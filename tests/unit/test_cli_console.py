"""The operator commands' console: tables sized to content, colour that never shifts a column,
and the log threshold that ``--verbosity`` sets for one command run."""

from __future__ import annotations

import logging
import logging.config

from django.conf import settings
from django.core.management.color import color_style, no_style

from orchestrator.cli.command import log_level
from orchestrator.cli.terminal import Cell, table

GREEN = "\x1b[32;1m"
RESET = "\x1b[0m"


def test_table__columns_as_wide_as_their_widest_cell() -> None:
    """Each column is as wide as its widest cell or header, two spaces apart; the last column
    is not padded, and right-aligned columns pad on the left."""
    lines = table(
        ("NAME", "STATE", "N"),
        [["a", "active", "7"], ["longer-name", "paused", "12"]],
        style=no_style(),
        right=frozenset({2}),
    )
    assert lines == [
        "NAME         STATE    N",
        "a            active   7",
        "longer-name  paused  12",
    ]


def test_table__short_data_makes_short_lines() -> None:
    """No fixed widths: a table of short cells is as narrow as its content, whatever the
    headers of other tables are."""
    lines = table(("A", "B"), [["x", "y"]], style=no_style())
    assert lines == ["A  B", "x  y"]
    assert max(len(line) for line in lines) == 4


def test_table__no_trailing_blanks_and_no_header() -> None:
    """An empty last cell leaves no trailing blanks; ``headers=None`` prints rows only."""
    assert table(None, [["+ create", "job", "celery", ""]], style=no_style()) == [
        "+ create  job  celery"
    ]
    assert table(None, [], style=no_style()) == []


def test_table__colour_codes_do_not_shift_columns() -> None:
    """Width is measured on the text, the padding stays outside the colour: with colour
    removed, a coloured table is the plain one, cell for cell."""
    style = color_style(force_color=True)
    rows = [[Cell("active", style.SUCCESS), "x"], ["paused", "y"]]
    coloured = table(("STATE", "V"), rows, style=style)
    assert coloured[1] == f"{GREEN}active{RESET}  x"
    plain = table(("STATE", "V"), [["active", "x"], ["paused", "y"]], style=no_style())
    stripped = [
        line.replace(GREEN, "").replace("\x1b[1m", "").replace(RESET, "") for line in coloured
    ]
    assert stripped == plain


def emitted(logger: logging.Logger, level: int) -> bool:
    """Whether a record at ``level`` reaches the handlers (``logging.disable`` included)."""
    return logger.isEnabledFor(level)


def test_log_level__verbosity_sets_what_shows_and_is_restored() -> None:
    """-v 0: errors only; -v 1 (default): warnings and errors; -v 2: INFO; -v 3: DEBUG. After
    the command, logging is as it was (call_command runs inside longer-lived processes)."""
    logger = logging.getLogger("orchestrator.reconcile")
    before = (logging.root.manager.disable, logging.getLogger().level)
    with log_level(0):
        assert not emitted(logger, logging.WARNING)
        assert emitted(logger, logging.ERROR)
    with log_level(1):
        assert not emitted(logger, logging.INFO)
        assert emitted(logger, logging.WARNING)
    with log_level(2):
        assert emitted(logger, logging.INFO)
        assert not emitted(logger, logging.DEBUG)
    with log_level(3):
        assert emitted(logger, logging.DEBUG)
    assert (logging.root.manager.disable, logging.getLogger().level) == before


def test_log_level__survives_logging_being_configured_again() -> None:
    """Celery's Django fix-up re-runs ``django.setup()`` (so ``settings.LOGGING``) the first
    time a command uses the Celery app; INFO stays hidden at the default verbosity after it."""
    logger = logging.getLogger("orchestrator.reconcile")
    with log_level(1):
        logging.config.dictConfig(settings.LOGGING)
        assert not emitted(logger, logging.INFO)
        assert emitted(logger, logging.WARNING)
