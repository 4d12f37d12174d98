"""The warning of `healthscore score` that the newest event is long before --as-of."""

import textwrap

import pytest

# The portfolio's newest event is from 2024-03-20, 194 days before this date.
LATE_AS_OF = "2024-09-30"

ACCOUNT_AND_SURVEY_PROFILE = textwrap.dedent(
    """\
    name: no-events
    min_coverage: 0.1
    components:
      - name: commitment
        weight: 1
        measures:
          - metric: contract
            category:
              points: {Month-to-month: 0, One year: 50, Two year: 100}
          - metric: arr
            linear: {worst: 0, best: 24000}
      - name: sentiment
        weight: 1
        measures:
          - metric: nps_90d
            linear: {worst: -100, best: 100}
    """
)


@pytest.fixture
def loaded(invoke, portfolio):
    assert invoke("ingest", "accounts", str(portfolio["accounts"])).exit_code == 0
    assert invoke("ingest", "events", str(portfolio["events"])).exit_code == 0
    return portfolio


def test_score_no_warning_without_event_metrics(invoke, loaded, tmp_path):
    profile = tmp_path / "no-events.yaml"
    profile.write_text(ACCOUNT_AND_SURVEY_PROFILE)

    result = invoke("score", "--as-of", LATE_AS_OF, "--profile", str(profile))

    assert result.exit_code == 0, result.output
    assert "Scored 3 accounts" in result.output
    assert "newest event" not in result.output


def test_score_warns_with_event_metrics(invoke, loaded):
    result = invoke("score", "--as-of", LATE_AS_OF, "--profile", str(loaded["profile"]))

    assert result.exit_code == 0, result.output
    assert "the newest event is from 2024-03-20, 194 days before" in " ".join(
        result.output.split()
    )
