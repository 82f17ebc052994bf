"""OpenCV DNN against onnxruntime (CPU execution provider) for the shipped ONNX models.

For SFace (int8) and YuNet (int8) on real CelebA photos: time per forward pass and agreement of
the outputs (cosine similarity of the SFace embeddings of the same crop; the largest difference
of YuNet's raw output tensors on the same input). onnxruntime comes with the faces extra (SFace
runs in it: ``privface.attributes.sface_network``); ``--ort DIR`` points at another version,
installed with ``pip install --target DIR onnxruntime``.

    python benchmarks/bench_onnx_backends.py --photos 200
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from common import default_data_dir, find_celeba, log

PHOTOS = "img_align_celeba_200ids"


def load_photos(data_dir: Path, n: int) -> list[np.ndarray]:
    import cv2

    folder = find_celeba(data_dir, PHOTOS) / PHOTOS
    files = sorted(folder.glob("*.jpg"))[:n]
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def sface_chips(photos: list[np.ndarray]) -> list[np.ndarray]:
    from privface.attributes.detection import FaceDetector
    from privface.attributes.recognizers import SFaceRecognizer

    detector, recognizer = FaceDetector(), SFaceRecognizer()
    chips = []
    for photo in photos:
        faces = detector.detect(photo)
        if faces:
            chips.append(recognizer.chip(photo, faces[0], np.zeros((68, 2))))
    return chips


def blob(chips: list[np.ndarray]) -> np.ndarray:
    """SFace's input: RGB 0..255 as float32 NCHW (what cv2.dnn.blobFromImage gives)."""
    return np.ascontiguousarray(np.stack(chips).transpose(0, 3, 1, 2), dtype=np.float32)


def timed(call, repeats: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return best, out


def ort_session(path: Path, threads: int, fold_weights: bool = True):
    """An onnxruntime session on the CPU EP with ``threads`` intra-op threads.

    ``fold_weights``: the int8 weights go through DequantizeLinear nodes, which onnxruntime keeps
    (to fuse them into quantized kernels) and so dequantizes on every pass; with QDQ handling
    off it folds them into float weights once, as OpenCV does.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if fold_weights:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def stale_inputs(session) -> dict[str, np.ndarray]:
    """Zeros for the graph inputs no node reads: the int8 SFace file still declares its float
    weights as inputs, which OpenCV ignores and onnxruntime insists on."""
    return {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()[1:]}


def opencv_passes(net, x: np.ndarray, names) -> list | np.ndarray:
    """One forward pass per image (batch 1), as privface runs the int8 models."""
    out = []
    for i in range(len(x)):
        net.setInput(x[i:i + 1])
        out.append(net.forward(names) if names else net.forward().ravel().copy())
    return out if names else np.stack(out)


def ort_passes(session, x: np.ndarray, extra: dict) -> list:
    """One onnxruntime run per image: both models declare a batch of exactly 1."""
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x[i:i + 1], **extra}) for i in range(len(x))]


def map_list(call, items) -> list:
    return [call(item) for item in items]


def bench_sface(chips: list[np.ndarray], threads: list[int]) -> list[dict]:
    import cv2

    from privface.attributes.detection import SFACE_FILE, bundled_model

    path = bundled_model(SFACE_FILE)
    x = blob(chips)
    rows = []
    for t in threads:
        cv2.setNumThreads(t)
        opencv = partial(opencv_passes, cv2.dnn.readNetFromONNX(str(path)), x, None)
        opencv()  # the first pass allocates
        seconds, reference = timed(opencv)
        rows.append({"model": "SFace int8", "backend": "OpenCV DNN", "threads": t,
                     "ms_per_face": 1000 * seconds / len(x), "agreement": "reference"})
        for fold in (False, True):
            session = ort_session(path, t, fold)
            onnxruntime = partial(ort_passes, session, x, stale_inputs(session))
            onnxruntime()
            seconds, outputs = timed(onnxruntime)
            got = np.concatenate([out[0] for out in outputs])
            a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
            b = got / np.linalg.norm(got, axis=1, keepdims=True)
            cosine = (a * b).sum(axis=1)
            rows.append({"model": "SFace int8",
                         "backend": "onnxruntime" + (", weights folded" if fold else ""),
                         "threads": t, "ms_per_face": 1000 * seconds / len(x),
                         "agreement": f"cosine min {cosine.min():.7f}, median "
                                      f"{np.median(cosine):.7f}"})
    return rows


def bench_yunet(photos: list[np.ndarray], threads: list[int]) -> list[dict]:
    """YuNet's raw forward pass on a 640 x 640 input (the size its ONNX graph declares)."""
    import cv2

    from privface.attributes.detection import YUNET_FILE, FaceDetector, bundled_model

    path = bundled_model(YUNET_FILE)
    canvas = np.zeros((len(photos), 3, 640, 640), np.float32)
    for i, photo in enumerate(photos):
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
        canvas[i, :, :bgr.shape[0], :bgr.shape[1]] = bgr.transpose(2, 0, 1)
    rows = []
    for t in threads:
        cv2.setNumThreads(t)
        detect = partial(map_list, FaceDetector().detect, photos)
        detect()
        seconds, _ = timed(detect)
        rows.append({"model": "YuNet int8", "backend": "OpenCV FaceDetectorYN (photo size)",
                     "threads": t, "ms_per_face": 1000 * seconds / len(photos),
                     "agreement": "-"})
        net = cv2.dnn.readNetFromONNX(str(path))
        names = net.getUnconnectedOutLayersNames()
        opencv = partial(opencv_passes, net, canvas, names)
        opencv()
        seconds, reference = timed(opencv)
        rows.append({"model": "YuNet int8", "backend": "OpenCV DNN (640 x 640)", "threads": t,
                     "ms_per_face": 1000 * seconds / len(photos), "agreement": "reference"})
        import onnxruntime as ort

        session = ort_session(path, t)
        order = [o.name for o in session.get_outputs()]
        position = {name: order.index(name) for name in names}

        onnxruntime = partial(ort_passes, session, canvas, {})
        try:
            onnxruntime()
        except ort.capi.onnxruntime_pybind11_state.Fail as exc:
            # The block-quantized ("bq") biases are a DequantizeLinear that onnxruntime refuses.
            rows.append({"model": "YuNet int8", "backend": "onnxruntime", "threads": t,
                         "ms_per_face": float("nan"),
                         "agreement": "does not run: " + str(exc).split("Status Message: ")[-1]
                         .split("was false. ")[-1].strip()[:80]})
            continue
        seconds, got = timed(onnxruntime)
        worst = max(float(np.abs(np.asarray(ref[k]) - out[position[name]]).max())
                    for ref, out in zip(reference, got) for k, name in enumerate(names))
        rows.append({"model": "YuNet int8", "backend": "onnxruntime (640 x 640)", "threads": t,
                     "ms_per_face": 1000 * seconds / len(photos),
                     "agreement": f"largest output difference {worst:.2e}"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ort", type=Path, help="a folder onnxruntime was installed into")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    args = parser.parse_args(argv)
    if args.ort is not None:
        sys.path.append(str(args.ort))  # after the environment's own packages (numpy)
    import onnxruntime

    photos = load_photos(args.data, args.photos)
    chips = sface_chips(photos)
    log(f"{len(photos)} photos, {len(chips)} faces; onnxruntime {onnxruntime.__version__}")
    rows = bench_sface(chips, args.threads) + bench_yunet(photos, args.threads)
    print("| model | backend | threads | ms per pass | agreement with OpenCV |")
    print("| --- | --- | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['backend']} | {r['threads']} | {r['ms_per_face']:.2f} | "
              f"{r['agreement']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
