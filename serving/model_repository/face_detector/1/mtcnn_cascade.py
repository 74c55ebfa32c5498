"""MTCNN face detection (P-Net -> R-Net -> O-Net) with onnxruntime, numpy and OpenCV.

A port of facenet-pytorch 2.6.0's `detect_face` (MIT) without torch/torchvision: the three
nets are the package's weights exported to ONNX by `trendflow models build`, which also checks
this cascade against the package's own detector on the sample frames.
"""

import cv2
import numpy as np

MIN_FACE = 20
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709


def nms(boxes, scores, threshold, method="Union", plus_one=False):
    """Indices kept by greedy non-maximum suppression, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    extra = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + extra) * (y2 - y1 + extra)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + extra)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + extra)
        inter = w * h
        if method == "Min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes, scores, image_inds, threshold, method="Union", plus_one=False):
    """NMS per image: boxes of different images are shifted apart so they never overlap."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = image_inds.astype(boxes.dtype) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, threshold, method, plus_one)


def rerec(boxes):
    """Boxes made square around their centre (side = the longer side)."""
    boxes = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def bbreg(boxes, reg):
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0] += reg[:, 0] * w
    boxes[:, 1] += reg[:, 1] * h
    boxes[:, 2] += reg[:, 2] * w
    boxes[:, 3] += reg[:, 3] * h
    return boxes


def crops(images, boxes, image_inds, size):
    """Normalised (n, 3, size, size) crops of each box (1-based inclusive coords, clipped)."""
    h, w = images.shape[1:3]
    ints = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(ints[:, 0], 1), np.maximum(ints[:, 1], 1)
    ex, ey = np.minimum(ints[:, 2], w), np.minimum(ints[:, 3], h)
    valid = (ey > y - 1) & (ex > x - 1)
    out = np.zeros((int(valid.sum()), size, size, 3), np.float32)
    for j, k in enumerate(np.flatnonzero(valid)):
        patch = images[image_inds[k], y[k] - 1 : ey[k], x[k] - 1 : ex[k]]
        out[j] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) * 0.0078125).transpose(0, 3, 1, 2), valid


def detect(images, pnet, rnet, onet):
    """Faces in a batch of same-size RGB uint8 images: a list of (n, 5) [x1, y1, x2, y2, score]."""
    images = np.asarray(images, dtype=np.float32)
    batch, h, w = images.shape[:3]
    scale = 12.0 / MIN_FACE
    min_side = min(h, w) * scale
    scales = []
    while min_side >= 12:
        scales.append(scale)
        scale *= FACTOR
        min_side *= FACTOR

    found, found_inds = [], []
    for scale in scales:
        hs, ws = int(h * scale + 1), int(w * scale + 1)
        data = np.stack([cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA) for img in images])
        data = ((data - 127.5) * 0.0078125).transpose(0, 3, 1, 2)
        reg, probs = pnet.run(None, {"input": np.ascontiguousarray(data, dtype=np.float32)})
        b, yy, xx = np.nonzero(probs[:, 1] >= THRESHOLDS[0])
        if b.size == 0:
            continue
        score = probs[b, 1, yy, xx]
        offsets = reg[b, :, yy, xx]
        grid = np.stack([xx, yy], axis=1).astype(np.float32)
        q1 = np.floor((2 * grid + 1) / scale)
        q2 = np.floor((2 * grid + 12) / scale)
        boxes = np.concatenate([q1, q2, score[:, None], offsets], axis=1)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], b, 0.5)
        found.append(boxes[keep])
        found_inds.append(b[keep])
    empty = [np.zeros((0, 5), np.float32) for _ in range(batch)]
    if not found:
        return empty
    boxes, inds = np.concatenate(found), np.concatenate(found_inds)
    keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[keep], inds[keep]
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    refined = boxes[:, :4] + boxes[:, 5:9] * np.stack([regw, regh, regw, regh], axis=1)
    boxes = rerec(np.concatenate([refined, boxes[:, 4:5]], axis=1))

    for stage, (net, size) in enumerate(((rnet, 24), (onet, 48)), start=1):
        if len(boxes) == 0:
            return empty
        data, valid = crops(images, boxes, inds, size)
        boxes, inds = boxes[valid], inds[valid]
        outputs = net.run(None, {"input": np.ascontiguousarray(data)})
        reg, probs = outputs[0], outputs[-1]
        passed = probs[:, 1] > THRESHOLDS[stage]
        boxes = np.concatenate([boxes[passed, :4], probs[passed, 1:2]], axis=1)
        inds, reg = inds[passed], reg[passed]
        if stage == 1:
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes = rerec(bbreg(boxes[keep], reg[keep]))
            inds = inds[keep]
        else:
            boxes = bbreg(boxes, reg)
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min", plus_one=True)
            boxes, inds = boxes[keep], inds[keep]
    return [boxes[inds == i].astype(np.float32) for i in range(batch)]
