"""Segment an image from a box with exported LiteMedSAM graphs and ONNX Runtime alone: no
torch, no medsam (numpy, OpenCV and onnxruntime only). Export the graphs first with
``medsam export --format onnx -o lite_medsam_onnx``; then::

    python examples/onnx_segment.py lite_medsam_onnx IMAGE.png X0,Y0,X1,Y1 MASK.png

The steps are those of ``lite_medsam_onnx/preprocessing.json``, with OpenCV's resizes as
LiteMedSAM's own code uses them (the masks equal medsam's on uint8 RGB images)."""
import sys

import cv2
import numpy as np
import onnxruntime as ort

folder, image_path, box, out = sys.argv[1:5]
image = cv2.cvtColor(cv2.imread(image_path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
H, W = image.shape[:2]
S = 256
scale = S / max(H, W)
h, w = max(1, int(H * scale + 0.5)), max(1, int(W * scale + 0.5))
x = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)
x = (x - x.min()) / max(x.max() - x.min(), 1e-8)
x = np.pad(x, ((0, S - h), (0, S - w), (0, 0))).transpose(2, 0, 1)[None].astype(np.float32)
embeddings = ort.InferenceSession(f"{folder}/image_encoder.onnx").run(None, {"image": x})[0]
boxes = np.floor(np.array([[float(v) for v in box.split(",")]]) * scale).astype(np.float32)
decoder = ort.InferenceSession(f"{folder}/prompt_decoder.onnx")
logits = decoder.run(None, {"embeddings": embeddings, "boxes": boxes})[0][0, 0, :h, :w]
mask = cv2.resize(logits, (W, H), interpolation=cv2.INTER_LINEAR) > 0
cv2.imwrite(out, mask.astype(np.uint8) * 255)
print(f"{out}: {int(mask.sum())} pixels")
