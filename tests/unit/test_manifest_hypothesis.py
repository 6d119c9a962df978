"""Property tests: whatever is thrown at the loader, the only failure is a located error.

Three sources of malformed manifests: arbitrary bytes, YAML documents built from the
manifest's own vocabulary with arbitrary values (the likeliest mistakes), and a valid manifest
mutated character by character.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.manifest import Manifest, load_manifest_text
from orchestrator.manifest_fields import JOB_FIELDS
from tests.unit.conftest import ALIASES, TASKS

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no example database written into the repository
    suppress_health_check=[HealthCheck.too_slow],
)

VALID = """\
version: 1
defaults:
  timezone: UTC
jobs:
  vacuum-analyze:
    schedule: "0 23 * * *"
    sql: VACUUM ANALYZE
  hourly-backup:
    schedule: "@hourly"
    task: tasks.backup.backup_database
    kwargs: {kind: hourly}
    retries: {max: 3, backoff: 60}
    timeout: 15m
  startup:
    on: startup
    command: [pg_dump, --format=custom]
"""


def assert_loads_or_located(data: str | bytes) -> None:
    """Loading either succeeds or raises ManifestInvalid whose every error is located."""
    invalid: ManifestInvalid | None = None
    try:
        manifest = load_manifest_text(
            data, path="fuzz.yaml", task_names=TASKS, database_aliases=ALIASES
        )
    except ManifestInvalid as error:
        invalid = error
    if invalid is None:
        assert isinstance(manifest, Manifest)
        return
    assert invalid.errors, "an invalid manifest names at least one error"
    for error in invalid.errors:
        assert isinstance(error, OrchestratorError)
        assert error.path == "fuzz.yaml"
        assert isinstance(error.line, int)
        assert error.line >= 1
        assert str(error).startswith(f"fuzz.yaml:{error.line}: ")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "0 23 * * *",
            "@hourly",
            "every 5m",
            "every 0s",
            "61 * * * *",
            "0 0 31 2 *",
            "SELECT 1",
            "VACUUM; DELETE FROM t",
            "SET ROLE admin",
            "startup",
            "Europe/Berlin",
            "Nowhere/City",
            "15m",
            "pg_cron",
            "celery",
            "tasks.backup.backup_database",
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00",
            "pg_dump 'unclosed",
        ]
    ),
)
keys = st.one_of(
    st.sampled_from([*JOB_FIELDS, "version", "jobs", "defaults", "max", "backoff"]),
    st.text(max_size=10),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=20,
)
jobs = st.dictionaries(
    st.text(min_size=1, max_size=12), st.dictionaries(keys, values, max_size=6), max_size=4
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "defaults": st.one_of(st.dictionaries(keys, values, max_size=4), scalars),
        "jobs": st.one_of(jobs, values),
    },
)


@PROPERTY_SETTINGS
@given(st.binary(max_size=400))
def test_loader__arbitrary_bytes(data: bytes) -> None:
    """Random bytes never escape as anything but a located ManifestInvalid."""
    assert_loads_or_located(data)


@PROPERTY_SETTINGS
@given(documents)
def test_loader__manifest_shaped_documents(document: dict[str, object]) -> None:
    """Documents of the manifest's own keys with any values: loaded, or located errors."""
    assert_loads_or_located(yaml.safe_dump(document, allow_unicode=True))


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(VALID)),
            st.integers(min_value=0, max_value=3),
            st.text(alphabet=" \t\n:-{}[]&*!|>'\"#%@`,?0123456789az\x00\x7f", max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_loader__mutated_valid_manifest(edits: list[tuple[int, int, str]]) -> None:
    """A valid manifest with characters deleted and inserted at random: loaded, or located."""
    text = VALID
    for position, delete, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + delete :]
    assert_loads_or_located(text)


def test_loader__valid_baseline() -> None:
    """The manifest the mutations start from is itself valid."""
    manifest = load_manifest_text(VALID, path="fuzz.yaml", task_names=TASKS)
    assert manifest.names == ("vacuum-analyze", "hourly-backup", "startup")
