#!/usr/bin/env python3
"""Reference outputs from OpenCV and numpy for the Segmentation tests.

  opencv-clahe.py IN.npy OUT.npy [--clip 2.0] [--tiles 8 8]
      IN: uint8, H x W or N x H x W. Writes cv2.createCLAHE(clip, (tx, ty)).apply of each
      image, same shape and dtype.

  opencv-clahe.py --paper-chain RGB.npy NORMALIZED.npy FINAL.npy
      RGB: uint8, N x H x W x 3. Runs the paper's preprocessing literally (orobix/retina-unet
      lib/pre_processing.py my_PreProc: float64 images, data-set z-score, per-image min-max,
      CLAHE, gamma 1.2). Writes the uint8 image CLAHE receives (NORMALIZED) and the uint8
      image after gamma (FINAL, the network input times 255), both N x H x W.

Needs python3-opencv (Debian) and numpy. Written for the tests; not part of the chain.
"""
import argparse
import sys

import cv2
import numpy as np


def clahe_images(a, clip, tiles):
    clahe = cv2.createCLAHE(clipLimit=clip, tileGridSize=tuple(tiles))
    if a.ndim == 2:
        return clahe.apply(a)
    return np.stack([clahe.apply(np.ascontiguousarray(img)) for img in a])


def paper_chain(rgb):
    # retina-unet stores the images as float64 N x 3 x H x W.
    imgs = np.transpose(rgb.astype(np.float64), (0, 3, 1, 2))
    gray = imgs[:, 0, :, :] * 0.299 + imgs[:, 1, :, :] * 0.587 + imgs[:, 2, :, :] * 0.114
    gray = np.reshape(gray, (imgs.shape[0], 1, imgs.shape[2], imgs.shape[3]))
    # dataset_normalized
    std = np.std(gray)
    mean = np.mean(gray)
    norm = (gray - mean) / std
    for i in range(norm.shape[0]):
        norm[i] = ((norm[i] - np.min(norm[i])) / (np.max(norm[i]) - np.min(norm[i]))) * 255
    normalized = np.stack([np.array(norm[i, 0], dtype=np.uint8) for i in range(norm.shape[0])])
    # clahe_equalized
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    equalized = np.stack([clahe.apply(normalized[i]) for i in range(normalized.shape[0])])
    # adjust_gamma(imgs, 1.2)
    inv_gamma = 1.0 / 1.2
    table = np.array([((i / 255.0) ** inv_gamma) * 255 for i in np.arange(0, 256)]).astype("uint8")
    final = np.stack([cv2.LUT(equalized[i], table) for i in range(equalized.shape[0])])
    return normalized, final


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--paper-chain", action="store_true")
    p.add_argument("--clip", type=float, default=2.0)
    p.add_argument("--tiles", type=int, nargs=2, default=[8, 8], metavar=("TX", "TY"))
    p.add_argument("paths", nargs="+")
    args = p.parse_args()
    if args.paper_chain:
        if len(args.paths) != 3:
            p.error("--paper-chain needs RGB.npy NORMALIZED.npy FINAL.npy")
        rgb = np.load(args.paths[0])
        if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[3] != 3:
            sys.exit("expected uint8 N x H x W x 3, got %s %s" % (rgb.dtype, rgb.shape))
        normalized, final = paper_chain(rgb)
        np.save(args.paths[1], normalized)
        np.save(args.paths[2], final)
        return
    if len(args.paths) != 2:
        p.error("needs IN.npy OUT.npy")
    a = np.load(args.paths[0])
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        sys.exit("expected uint8 H x W or N x H x W, got %s %s" % (a.dtype, a.shape))
    np.save(args.paths[1], clahe_images(a, args.clip, args.tiles))


if __name__ == "__main__":
    main()
