"""healthscore: customer health scores that are explained and checked against churn."""

__version__ = "0.1.0"
