"""Table schemas of the healthscore store.

All times are UTC (``timestamp('UTC')``). Source tables carry the ``load_id`` of the
ingest run that wrote each row, so every row can be traced to its file. Score tables are
append-only: each scoring run has a ``run_id`` and readers take the newest run per
account and date.
"""

from __future__ import annotations

import ibis
import ibis.expr.schema as sch

__all__ = ["ADDED_COLUMNS", "SCHEMA_VERSION", "TABLES"]

SCHEMA_VERSION = 1

_UTC = "timestamp('UTC')"

TABLES: dict[str, sch.Schema] = {
    # One row per account. Columns the schema does not name go to account_attributes.
    "accounts": ibis.schema(
        {
            "account_id": "!string",
            "name": "string",
            "segment": "string",
            "plan": "string",
            "owner": "string",
            "parent_id": "string",
            "arr": "float64",
            "seats": "int64",
            "created_at": _UTC,
            "renewal_at": _UTC,
            "churned": "boolean",
            "churned_at": _UTC,
            "load_id": "!string",
        }
    ),
    # Extra account columns in long form. A boolean is stored as number 1 or 0 and as
    # text "true" or "false"; a number also keeps its text form.
    "account_attributes": ibis.schema(
        {
            "account_id": "!string",
            "name": "!string",
            "kind": "!string",
            "number_value": "float64",
            "text_value": "string",
            "load_id": "!string",
        }
    ),
    "users": ibis.schema(
        {
            "user_id": "!string",
            "account_id": "!string",
            "email": "string",
            "created_at": _UTC,
            "load_id": "!string",
        }
    ),
    # event_key is event_id when the source has one, else a hash of the row's values.
    "events": ibis.schema(
        {
            "event_key": "!string",
            "event_id": "string",
            "account_id": "!string",
            "user_id": "string",
            "event_name": "!string",
            "feature": "string",
            "occurred_at": f"!{_UTC}",
            "value": "float64",
            "load_id": "!string",
        }
    ),
    "survey_responses": ibis.schema(
        {
            "response_key": "!string",
            "response_id": "string",
            "account_id": "!string",
            "user_id": "string",
            "survey": "!string",
            "score": "!float64",
            "comment": "string",
            "responded_at": f"!{_UTC}",
            "load_id": "!string",
        }
    ),
    "tickets": ibis.schema(
        {
            "ticket_key": "!string",
            "ticket_id": "string",
            "account_id": "!string",
            "priority": "string",
            "status": "string",
            "opened_at": f"!{_UTC}",
            "resolved_at": _UTC,
            "load_id": "!string",
        }
    ),
    # Rejected input rows: raw is a JSON object of the row's values as read.
    "quarantine": ibis.schema(
        {
            "load_id": "!string",
            "entity": "!string",
            "source": "!string",
            "row_number": "!int64",
            "raw": "!string",
            "reason": "!string",
            "quarantined_at": f"!{_UTC}",
        }
    ),
    "loads": ibis.schema(
        {
            "load_id": "!string",
            "entity": "!string",
            "source": "!string",
            "source_sha256": "!string",
            "rows_read": "!int64",
            "accepted": "!int64",
            "rejected": "!int64",
            "duplicates": "!int64",
            "updated": "!int64",
            "loaded_at": f"!{_UTC}",
        }
    ),
    # Metric values per account as of a date, in long form.
    "metric_snapshots": ibis.schema(
        {
            "run_id": "!string",
            "as_of": "!date",
            "account_id": "!string",
            "metric": "!string",
            "number_value": "float64",
            "text_value": "string",
        }
    ),
    "profiles": ibis.schema(
        {
            "profile_hash": "!string",
            "profile_name": "!string",
            "source": "string",
            "text": "!string",
            "stored_at": f"!{_UTC}",
        }
    ),
    "scores": ibis.schema(
        {
            "run_id": "!string",
            "as_of": "!date",
            "account_id": "!string",
            "profile_name": "!string",
            "profile_hash": "!string",
            "score": "float64",
            "band": "!string",
            "coverage": "!float64",
            "weakest_component": "string",
            "computed_at": f"!{_UTC}",
            # Set only on rows where a manual override replaced the computed score
            # or band. score and band hold the result, computed_* the engine's.
            "override_id": "string",
            "override_score": "float64",
            "override_band": "string",
            "override_author": "string",
            "override_reason": "string",
            "override_expires_at": _UTC,
            "computed_score": "float64",
            "computed_band": "string",
        }
    ),
    "score_components": ibis.schema(
        {
            "run_id": "!string",
            "as_of": "!date",
            "account_id": "!string",
            "component": "!string",
            "score": "float64",
            "weight": "!float64",
            "effective_weight": "!float64",
            "contribution": "!float64",
        }
    ),
    "score_measures": ibis.schema(
        {
            "run_id": "!string",
            "as_of": "!date",
            "account_id": "!string",
            "component": "!string",
            "measure": "!string",
            "metric": "!string",
            "number_value": "float64",
            "text_value": "string",
            "points": "float64",
            "weight": "!float64",
            "effective_weight": "!float64",
            "contribution": "!float64",
            "note": "string",
        }
    ),
    # Daily rollups of events, written by healthscore.metrics.rollup. Each row is a
    # partial aggregate of one load, so a key can repeat across loads and readers add
    # the rows up. day is the UTC day number, whole days since 1970-01-01.
    "event_user_days": ibis.schema(
        {
            "load_id": "!string",
            "account_id": "!string",
            "user_id": "string",
            "day": "!int64",
            "events": "!int64",
            "value_sum": "float64",
            "value_count": "!int64",
            "first_at": f"!{_UTC}",
            "last_at": f"!{_UTC}",
        }
    ),
    "event_feature_days": ibis.schema(
        {
            "load_id": "!string",
            "account_id": "!string",
            "feature": "!string",
            "day": "!int64",
            "events": "!int64",
        }
    ),
    # Events per load_id that the rollups contain.
    "rolled_up_loads": ibis.schema(
        {"load_id": "!string", "events": "!int64", "rolled_at": f"!{_UTC}"}
    ),
    # Inputs of customer-success managers: a sentiment (1 to 5) or an override of
    # the score or band. Rows are never changed. An input ends when it expires or
    # when a human_input_audit row names it in ended_input_id.
    "human_inputs": ibis.schema(
        {
            "input_id": "!string",
            "account_id": "!string",
            "kind": "!string",
            "value": "!string",
            "sentiment": "float64",
            "override_score": "float64",
            "override_band": "string",
            "author": "!string",
            "reason": "!string",
            "entered_at": f"!{_UTC}",
            "expires_at": f"!{_UTC}",
        }
    ),
    # One row per change to human_inputs. old_value and new_value are the value
    # text of the input that was active before and after the change.
    "human_input_audit": ibis.schema(
        {
            "audit_id": "!string",
            "input_id": "!string",
            "account_id": "!string",
            "kind": "!string",
            "action": "!string",
            "author": "!string",
            "reason": "!string",
            "changed_at": f"!{_UTC}",
            "old_value": "string",
            "new_value": "string",
            "ended_input_id": "string",
        }
    ),
    # Parent accounts rolled up from the child scores of a run, written by
    # healthscore.history.parents. Each roll-up gets its own rollup_id, and readers
    # take the newest roll-up of the newest as-of date, or of the date requested.
    "parent_scores": ibis.schema(
        {
            "rollup_id": "!string",
            "run_id": "!string",
            "as_of": "!date",
            "parent_id": "!string",
            "profile_hash": "!string",
            "rules": "!string",
            "score": "float64",
            "band": "!string",
            "coverage": "!float64",
            "level": "!int64",
            "children": "!int64",
            "worst_child": "string",
            "worst_child_score": "float64",
            "arr": "float64",
            "rolled_at": f"!{_UTC}",
        }
    ),
    # position is the component's place in the profile, the order in which the
    # contributions add up to the parent's score.
    "parent_components": ibis.schema(
        {
            "rollup_id": "!string",
            "parent_id": "!string",
            "component": "!string",
            "position": "!int64",
            "operator": "!string",
            "score": "float64",
            "weight": "!float64",
            "effective_weight": "!float64",
            "contribution": "!float64",
            "children_with_data": "!int64",
        }
    ),
    # One row per parent, component and direct child. For each parent and
    # component, the contributions add up to the parent's component score.
    "parent_contributions": ibis.schema(
        {
            "rollup_id": "!string",
            "parent_id": "!string",
            "component": "!string",
            "child_id": "!string",
            "operator": "!string",
            "child_score": "float64",
            "points": "float64",
            "weight": "!float64",
            "contribution": "!float64",
            "note": "string",
        }
    ),
    # Churn probabilities written by healthscore.predict.predictions. Each run has
    # its own run_id, and readers take an account's newest run. probability is the
    # calibrated P(churn within horizon_days after as_of). low and high bound the
    # percentile interval of coverage interval_level over bootstrap refits.
    "predictions": ibis.schema(
        {
            "run_id": "!string",
            "as_of": "!date",
            "account_id": "!string",
            "probability": "!float64",
            "low": "float64",
            "high": "float64",
            "interval_level": "float64",
            "horizon_days": "!int64",
            "model": "!string",
            "computed_at": f"!{_UTC}",
        }
    ),
    # The metrics that raised an account's churn risk most, rank 1 first, as
    # ChurnModel.drivers returns them: contribution is in log-odds points. value
    # is the metric's number as of the run, text_value the text of a text metric.
    "prediction_drivers": ibis.schema(
        {
            "run_id": "!string",
            "account_id": "!string",
            "rank": "!int64",
            "feature": "!string",
            "contribution": "!float64",
            "value": "float64",
            "text_value": "string",
        }
    ),
    "schema_info": ibis.schema({"schema_version": "!int64"}),
}

#: Nullable columns added to tables after schema version 1. ``Store.open`` adds
#: them to a DuckDB store created before them.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "scores": (
        "override_id",
        "override_score",
        "override_band",
        "override_author",
        "override_reason",
        "override_expires_at",
        "computed_score",
        "computed_band",
    ),
}
