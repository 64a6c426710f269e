"""Synthesis speed of SyntheticMaskedFaces: samples per second at 256x256.

    python benchmarks/bench_data.py [--chunks 4] [--size 256]

Target: >= 50 samples/s on 2 CPU cores, so the paper's 800 + 200 samples take under half a
minute. Times `generate_chunk` (rendering and compositing; not the disk cache).
"""

from __future__ import annotations

import argparse
import time

import torch

from unmasklib import face3d
from unmasklib.data.synthetic import CHUNK_SIZE, generate_chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    model = face3d.load_face_model()
    generate_chunk(model, 0, "train", 0, args.size)  # warm-up
    start = time.perf_counter()
    for chunk in range(1, args.chunks + 1):
        generate_chunk(model, 0, "train", chunk, args.size)
    seconds = time.perf_counter() - start
    rate = args.chunks * CHUNK_SIZE / seconds
    print(f"threads: {torch.get_num_threads()}, {args.chunks * CHUNK_SIZE} samples at "
          f"{args.size}x{args.size} in {seconds:.2f} s")
    print(f"synthesis: {rate:.1f} samples/s (target >= 50; ratio {rate / 50:.2f})")


if __name__ == "__main__":
    main()
