"""Health profiles that ship with healthscore."""

from pathlib import Path

__all__ = ["DEFAULT_PROFILE", "PROFILE_DIR"]

PROFILE_DIR = Path(__file__).parent

#: The profile `healthscore score` uses when no --profile is given.
DEFAULT_PROFILE = PROFILE_DIR / "saas-default.yaml"
