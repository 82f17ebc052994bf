#!/usr/bin/env bash
# The whole StarGAN GPU job of issue 19 in one device call: unpack the carried data, install
# privface from the tree, train for a wall-clock budget, leave G in half precision in $OUT.
#
# Before the call, here (CPU): `.venv/bin/python benchmarks/stargan_pack.py` writes .stargan-pack/
# (ignored; about 32 MiB). The device tool's exact call is in docs/stargan-training.md:
#   run(command="bash benchmarks/stargan_gpu_job.sh", carry=[".stargan-pack"], timeout_s=600)
#
# The device machine (nvidia-h200) has no network. Its python3 (3.12, /opt/torch/.venv) already
# holds everything privface's training imports: torch 2.11, numpy, pandas, scipy, pillow,
# safetensors, typer, rich (KINDS.md's package list), so no wheels travel; privface itself is
# installed with --no-deps --no-index from the tree. Were a package missing there, carry it as
# wheels made here, e.g. for typer:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl typer==0.12.5
# name ".whl" in carry, and set STARGAN_WHEELS=.whl (installed first, into /tmp/site).
#
# Settings (environment): OUT (default ./stargan-out), STARGAN_DEVICE (cuda), STARGAN_MINUTES
# (8.3: the training budget, data loading included, so that the whole call ends inside the
# device tool's 600 s), STARGAN_ITERATIONS (200000: the budget ends the run first),
# STARGAN_BATCH (16, the paper's), STARGAN_SAVE_MINUTES (2.5), STARGAN_SEED (19).
# CPU smoke run of the same job: STARGAN_DEVICE=cpu STARGAN_ITERATIONS=2 STARGAN_BATCH=2.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/stargan-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
PACK=${STARGAN_PACK:-.stargan-pack}
DEVICE=${STARGAN_DEVICE:-cuda}
CKPT=${STARGAN_CHECKPOINTS:-/tmp/stargan-checkpoints}
NAME=stargan_celeba128_v1
say() { echo "[stargan-job $(date -u +%H:%M:%S)] $*"; }

UNPACKED=${STARGAN_UNPACKED:-/tmp/stargan-pack}
if [ ! -f "$PACK/list_attr_stargan.txt" ] || [ ! -f "$PACK/images.zip" ]; then
  say "no $PACK/images.zip or list_attr_stargan.txt: run benchmarks/stargan_pack.py and carry $PACK"
  exit 2
fi
rm -rf "$UNPACKED" && mkdir -p "$UNPACKED"
$PY -m zipfile -e "$PACK/images.zip" "$UNPACKED" || exit 2
say "pack: $(find "$UNPACKED/images" -type f | wc -l) images unpacked to $UNPACKED"

if [ -n "${STARGAN_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$STARGAN_WHEELS"/*.whl || exit 3
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c "import privface.generators.stargan" 2>/dev/null; then
  say "installing privface from the tree (no deps, no index)"
  if ! $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . ; then
    # The package maps root folders into privface.*: the same layout, as links, without pip.
    say "pip install failed; linking the package into /tmp/privface-site instead"
    site=/tmp/privface-site
    rm -rf "$site" && mkdir -p "$site/privface"
    cp -rs "$PWD/privface/." "$site/privface/"
    for part in privmetrics attributes generators adversarial cli; do
      ln -sfn "$PWD/$part" "$site/privface/$part"
    done
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
$PY - <<'EOF' || exit 4
import torch, privface
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "privface",
      privface.__version__, flush=True)
EOF

say "training on $DEVICE for at most ${STARGAN_MINUTES:-8.3} min"
PYTHONUNBUFFERED=1 $PY -m privface.cli.main train stargan \
  --images "$UNPACKED/images" --labels "$PACK/list_attr_stargan.txt" \
  --device "$DEVICE" --batch-size "${STARGAN_BATCH:-16}" \
  --iterations "${STARGAN_ITERATIONS:-200000}" --max-minutes "${STARGAN_MINUTES:-8.3}" \
  --save-every-minutes "${STARGAN_SAVE_MINUTES:-2.5}" --checkpoint-dir "$CKPT" --preload \
  --export-dir "$OUT" --export-name "$NAME" --seed "${STARGAN_SEED:-19}" \
  --log-every "${STARGAN_LOG_EVERY:-250}" 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
say "training exited with status $status"

# What came of it: iterations, last losses, the shards (joined back as a check).
STARGAN_OUT=$OUT STARGAN_NAME=$NAME $PY - <<'EOF'
import json, os, re
from pathlib import Path

import torch

from privface.generators.stargan.checkpoints import read_generator_shards
from privface.generators.stargan import load_stargan_generator

out = Path(os.environ["STARGAN_OUT"])
shards = sorted(out.glob(os.environ["STARGAN_NAME"] + "-*-of-*.safetensors"))
lines = (out / "train.log").read_text().splitlines()
last = [line for line in lines if re.search(r"iteration \d+/\d+", line)]
summary = {"last_log_line": last[-1] if last else None,
           "shards": {p.name: p.stat().st_size for p in shards}}
if shards:
    state, meta = read_generator_shards(shards[0])
    model = load_stargan_generator(shards[0], c_dim=len(meta["attributes"]),
                                   conv_dim=meta["conv_dim"], repeat_num=meta["repeat_num"])
    with torch.no_grad():
        y = model(torch.zeros(1, 3, 128, 128), torch.zeros(1, len(meta["attributes"])))
    summary.update(iterations=meta["iteration"], minutes=meta["minutes"],
                   metadata=meta, output_finite=bool(torch.isfinite(y).all()))
if torch.cuda.is_available():
    summary["gpu"] = torch.cuda.get_device_name(0)
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
ls -l "$OUT"
exit "$status"
