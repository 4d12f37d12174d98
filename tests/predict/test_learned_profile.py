import numpy as np
import pandas as pd
import pytest

from healthscore.demo import run as demo
from healthscore.evaluation import roc_auc
from healthscore.exceptions import ConfigError
from healthscore.ingest import ingest_file, load_mapping
from healthscore.metrics import compute_metrics
from healthscore.predict import (
    TrainingSet,
    build_training_set,
    cross_validated_predictions,
    cross_validated_profile_risk,
    fit_boosted,
    fit_logistic,
    learned_profile,
    profile_risk,
)
from healthscore.scoring import (
    CategoryScheme,
    LinearScheme,
    load_profile,
    parse_profile,
    score_accounts,
)
from healthscore.store import Store
from tests.predict.test_models import TELCO_AS_OF, TELCO_METRICS, synthetic_training

TELCO_PROFILE = demo.DEMO_DIR / "profiles" / "telco.yaml"


@pytest.fixture(scope="module")
def telco_store(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("telco") / "telco.duckdb")
    mapping = load_mapping(demo.DEMO_DIR / "mappings" / "telco.yaml")
    ingest_file(store, "accounts", demo.TELCO_FILE, mapping)
    yield store
    store.close()


@pytest.fixture(scope="module")
def telco_training(telco_store):
    return build_training_set(telco_store, TELCO_METRICS, [TELCO_AS_OF], 30)


@pytest.fixture(scope="module")
def telco_model(telco_training):
    return fit_logistic(telco_training, calibration=None)


def measures_by_metric(profile):
    return {measure.metric: measure for _, measure in profile.measures}


def test_learned_profile_ranks_like_model(telco_store, telco_training, telco_model):
    profile = parse_profile(learned_profile(telco_model, telco_training))
    metrics = compute_metrics(telco_store, TELCO_AS_OF, profile.metrics)

    scores = score_accounts(metrics, profile).scores.set_index("account_id")

    features = telco_training.rows.set_index("account_id")
    probability = telco_model.predict_proba(features)
    log_odds = pd.Series(np.log(probability / (1 - probability)), features.index)
    # Accounts with every value present and inside the linear ranges.
    inside = features[list(telco_training.feature_names)].notna().all(axis=1)
    for metric, measure in measures_by_metric(profile).items():
        if isinstance(measure.scheme, LinearScheme):
            low = min(measure.scheme.worst, measure.scheme.best)
            high = max(measure.scheme.worst, measure.scheme.best)
            inside &= features[metric].between(low, high)
    assert inside.sum() > 5000
    ids = features.index[inside]
    correlation = np.corrcoef(scores.loc[ids, "score"], log_odds.loc[ids])[0, 1]
    assert correlation < -0.99999


def test_learned_profile_points_by_hand(telco_training, telco_model):
    profile = parse_profile(learned_profile(telco_model, telco_training))
    coefficients = telco_model.coefficients()

    contract = measures_by_metric(profile)["contract"]
    risk = {
        value: coefficients.loc[f"contract={value}", "coef_per_unit"]
        for value in ("Month-to-month", "One year", "Two year")
    }
    lowest, highest = min(0.0, *risk.values()), max(0.0, *risk.values())
    expected = {v: 100 * (highest - r) / (highest - lowest) for v, r in risk.items()}
    assert isinstance(contract.scheme, CategoryScheme)
    points = dict(contract.scheme.points)
    for value, expected_points in expected.items():
        assert points[value] == pytest.approx(expected_points, rel=1e-5)
    assert contract.weight == pytest.approx(highest - lowest, rel=1e-5)

    tenure = measures_by_metric(profile)["tenure"]
    values = telco_training.rows["tenure"].dropna()
    low, high = np.percentile(values, [5, 95])
    per_unit = coefficients.loc["tenure", "coef_per_unit"]
    assert per_unit < 0
    assert (tenure.scheme.worst, tenure.scheme.best) == (low, high)
    assert tenure.weight == pytest.approx(-per_unit * (high - low), rel=1e-5)


def test_learned_profile_takes_base(telco_training, telco_model):
    base = load_profile(TELCO_PROFILE)

    text = learned_profile(telco_model, telco_training, base=TELCO_PROFILE, name="t")
    profile = parse_profile(text)

    assert profile.name == "t"
    assert profile.applies_to_segments == ("Telco",)
    assert profile.bands == base.bands
    components = {c.name: [m.metric for m in c.measures] for c in profile.components}
    assert "contract" in components["commitment"]
    assert "payment_method" in components["billing"]
    assert "gender" in components["learned"]
    # A component's weight is the sum of its measures' weights.
    for component in profile.components:
        inner = sum(m.weight for m in component.measures)
        assert component.weight == pytest.approx(inner, rel=1e-5)


def test_learned_profile_drops_zero_coefficient():
    training = synthetic_training()
    model = fit_logistic(training, signs={"x1": -1}, calibration=None)

    profile = parse_profile(learned_profile(model, training))

    assert set(profile.metrics) == {"x2", "x3"}
    x2 = measures_by_metric(profile)["x2"].scheme
    # x2 lowers churn risk, so higher values earn more points.
    assert x2.best > x2.worst


def test_learned_profile_rejects_boosted():
    training = synthetic_training(n=400)
    model = fit_boosted(training, calibration=None)

    with pytest.raises(ConfigError, match="only for logistic models"):
        learned_profile(model, training)


def test_learned_profile_rejects_other_training():
    training = synthetic_training(n=400)
    model = fit_logistic(training)
    other = training.rows.rename(columns={"x3": "x4"})

    mismatched = TrainingSet(other, ("x1", "x2", "x4"), 30)
    with pytest.raises(ConfigError, match="features differ"):
        learned_profile(model, mismatched)


def test_profile_risk_matches_score(telco_store, telco_training):
    profile = load_profile(TELCO_PROFILE)

    risk = profile_risk(telco_store, profile, telco_training)

    metrics = compute_metrics(telco_store, TELCO_AS_OF, (*profile.metrics, "segment"))
    scores = score_accounts(metrics, profile).scores.set_index("account_id")
    expected = 100 - scores["score"].loc[telco_training.rows["account_id"]]
    np.testing.assert_array_equal(risk, expected.to_numpy())


@pytest.mark.slow
def test_cross_validated_profile_risk_telco(telco_store, telco_training):
    base = load_profile(TELCO_PROFILE)

    learned = cross_validated_profile_risk(telco_store, telco_training, base=base)
    model = cross_validated_predictions(telco_training, fit_logistic)
    hand_set = profile_risk(telco_store, base, telco_training)

    learned_auc = roc_auc(learned["risk"], learned["label"])
    model_auc = roc_auc(model["probability"], model["label"])
    hand_set_auc = roc_auc(hand_set, telco_training.labels())
    assert learned["row"].tolist() == model["row"].tolist()
    assert learned_auc > hand_set_auc
    assert abs(learned_auc - model_auc) < 0.01
