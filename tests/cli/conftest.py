import textwrap

import pytest
from typer.testing import CliRunner

from healthscore.cli import app


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def invoke(runner, tmp_path):
    """Run a healthscore command against a store in tmp_path."""
    store = tmp_path / "store.duckdb"

    def run(*args):
        return runner.invoke(
            app, [*args, "--store", str(store)], env={"COLUMNS": "200"}
        )

    return run


@pytest.fixture
def portfolio(tmp_path):
    """Write a small portfolio: accounts, events and a two-component profile."""
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        textwrap.dedent(
            """\
            account_id,name,segment,arr,churned,contract
            A1,Acme,SMB,12000,No,Two year
            A2,Globex,SMB,"24,000",Yes,Month-to-month
            A3,Initech,SMB,6000,No,One year
            """
        )
    )
    events = tmp_path / "events.csv"
    rows = ["account_id,user_id,event_name,occurred_at"]
    # A1 is active on 10 days, A2 on 2 days, A3 on none in the 30 days to 2024-03-31
    # (2024-03-02 to 2024-03-31).
    rows += [f"A1,u1,login,2024-03-{day:02d}T09:00:00Z" for day in range(2, 12)]
    rows += ["A2,u2,login,2024-03-05T09:00:00Z", "A2,u2,login,2024-03-20T09:00:00Z"]
    rows += ["A3,u3,login,2023-12-01T09:00:00Z"]
    events.write_text("\n".join(rows) + "\n")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        textwrap.dedent(
            """\
            name: small
            components:
              - name: commitment
                weight: 1
                measures:
                  - metric: contract
                    weight: 1
                    category:
                      points: {Month-to-month: 0, One year: 50, Two year: 100}
              - name: usage
                weight: 1
                measures:
                  - metric: active_days_30d
                    weight: 1
                    linear: {worst: 0, best: 10}
            """
        )
    )
    return {"accounts": accounts, "events": events, "profile": profile}
