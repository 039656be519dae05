"""The `encoder` policy on real survey data with the real MiniLM encoder: training, onboarding,
persistence, and that predictions come from the model, never from the evaluated items' human data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from valuemulch.backbones import EmbeddingCache, MiniLMEncoder
from valuemulch.certify import score_policy
from valuemulch.errors import ConfigError
from valuemulch.policies import EncoderPolicy, Policy
from valuemulch.policies._encoder import position_features
from valuemulch.types import NormItem, Norms, Question

FAST = {"epochs": 8, "hidden": 64}


def _subset(testbed, split: str, n_questions: int, communities: list[str]) -> Norms:  # type: ignore[no-untyped-def]
    ids = sorted(testbed.question_ids(split))[:n_questions]
    return testbed.items(split, "all").filter(question_ids=ids, communities=communities)


@pytest.fixture(scope="module")
def small(us32):  # type: ignore[no-untyped-def]
    communities = ["POLPARTY:Democrat", "POLPARTY:Republican", "AGE:65+", "SEX:Female"]
    train = _subset(us32, "train", 80, communities)
    test = _subset(us32, "test", 30, communities)
    return train, test, EncoderPolicy(**FAST).fit(train)


def test_position_features_describe_the_scale() -> None:
    q = Question("q", "How much?", ("A lot", "Some", "None", "Refused"), ordinal=(1.0, 2.0, 3.0, None))
    f = position_features(q)
    assert f.shape == (4, 8)
    np.testing.assert_allclose(f[:3, 0], [0, 0.5, 1])  # rank among substantive answers
    assert f[0, 1] == 1 and f[2, 2] == 1 and f[3, 3] == 1  # first, last, refusal
    np.testing.assert_allclose(f[:, 5], [1, 1, 1, 0])  # on the scale


def test_learns_something_real(small) -> None:  # type: ignore[no-untyped-def]
    train, test, policy = small
    assert policy.train_loss_[-1] < policy.train_loss_[0]
    from valuemulch.policies import UniformPolicy

    ours = score_policy(policy, test).scores["one_minus_jsd"].mean()
    uniform = score_policy(UniformPolicy().fit(train), test).scores["one_minus_jsd"].mean()
    assert ours > uniform + 0.05


def test_unknown_community_is_skipped_with_a_reason_and_predict_says_adapt(small) -> None:  # type: ignore[no-untyped-def]
    _, test, policy = small
    q = test.items[0].question
    assert policy.uncovered_reason("RACE:Asian", q) is not None and not policy.covers("RACE:Asian", q)
    with pytest.raises(ConfigError, match="valuemulch adapt"):
        policy.predict("RACE:Asian", [q])


def test_predictions_never_read_the_evaluated_items(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scrambling the test items' human answers changes the scores but not one prediction, and the
    trained artifact holds no trace of a test question."""
    train, test, policy = small
    rng = np.random.default_rng(0)
    scrambled = Norms([NormItem(i.community, i.question, rng.dirichlet(np.ones(i.question.n_options)), i.n) for i in test])
    for community in test.communities:
        qs = [i.question for i in test if i.community == community]
        a = policy.predict(community, qs)
        b = policy.predict(community, [i.question for i in scrambled if i.community == community])
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert score_policy(policy, test).scores["tv"].tolist() != score_policy(policy, scrambled).scores["tv"].tolist()
    assert not set(test.questions) & set(train.questions)
    artifact = policy.save(tmp_path / "model")
    saved = (artifact / "policy.json").read_text() + str((artifact / "weights.safetensors").read_bytes())
    assert not [q for q in test.questions.values() if q.id in saved or q.text in saved]


def test_adapt_onboards_without_moving_the_rest(small, us32, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _train, test, policy = small
    adapted = Policy.load(policy.save(tmp_path / "model"))
    newcomer = _subset(us32, "train", 80, ["POLIDEOLOGY:Very liberal"])
    before = {c: adapted.predict(c, list(test.questions.values())) for c in policy.communities_}
    adapted.adapt("POLIDEOLOGY:Very liberal", newcomer, k=10, seed=3)
    for c, preds in before.items():
        for x, y in zip(preds, adapted.predict(c, list(test.questions.values())), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)
    used = adapted.adapted_["POLIDEOLOGY:Very liberal"]["questions"]
    assert len(used) == 10 and set(used) <= set(newcomer.questions)
    scores = score_policy(adapted, newcomer)
    assert scores.skipped == {"used to adapt the model to its community": 10}
    assert len(scores.keys) == len(newcomer) - 10
    again = Policy.load(adapted.save(tmp_path / "adapted"))
    qs = list(test.questions.values())
    for x, y in zip(adapted.predict("POLIDEOLOGY:Very liberal", qs), again.predict("POLIDEOLOGY:Very liberal", qs), strict=True):
        np.testing.assert_array_equal(x, y)


def test_adapt_errors_say_what_to_do(small) -> None:  # type: ignore[no-untyped-def]
    train, _, policy = small
    with pytest.raises(ConfigError, match="already known"):
        policy.adapt("AGE:65+", train, k=5)
    with pytest.raises(ConfigError, match="No items for community"):
        policy.adapt("AGE:18-29", train, k=5)
    newcomer = Norms([i for i in train if i.community == "AGE:65+"][:4])
    renamed = Norms([NormItem("AGE:18-29", i.question, i.distribution, i.n) for i in newcomer])
    with pytest.raises(ConfigError, match="between 1 and 4"):
        policy.adapt("AGE:18-29", renamed, k=20)


def test_bad_hyper_parameters_are_config_errors_at_fit() -> None:
    unchecked = EncoderPolicy(epochs=0)  # as in scikit-learn, __init__ only stores
    with pytest.raises(ConfigError, match=r"The 'epochs' parameter of EncoderPolicy must be an integer >= 1; got 0\."):
        unchecked.fit(Norms())
    with pytest.raises(ConfigError, match=r"'dropout' parameter of EncoderPolicy must be a number >= 0 and < 1; got 1\.5"):
        EncoderPolicy(dropout=1.5).fit(Norms())


def test_embedding_cache_is_keyed_by_encoder_and_text(tmp_path: Path) -> None:
    encoder = MiniLMEncoder()
    cache = EmbeddingCache(encoder, tmp_path / "e.sqlite")
    a = cache.embed(["Do you favor it?", "Yes", "Do you favor it?"])
    assert a.shape == (3, 384) and cache.misses == 2 and cache.hits == 0
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    warm = EmbeddingCache(encoder, tmp_path / "e.sqlite")
    b = warm.embed(["Yes", "Do you favor it?", "No"])
    assert warm.hits == 2 and warm.misses == 1
    np.testing.assert_array_equal(b[0], a[1])
    np.testing.assert_allclose(b[2], encoder.encode(["No"])[0], atol=1e-6)

    class Other:
        id, dim = "other-encoder", 384

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 384), dtype=np.float32)

    other = EmbeddingCache(Other(), tmp_path / "e.sqlite").embed(["Yes"])
    assert np.all(other == 1)  # another encoder's id never reads MiniLM's rows
