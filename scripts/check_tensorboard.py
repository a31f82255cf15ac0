#!/usr/bin/env python3
"""Checks a Gantry run folder with TensorBoard's own event reader.

Gantry writes TensorBoard event files by hand (trainer/src/report/tensorboard.rs), so
this reads them back with tensorboard's EventAccumulator - the code `tensorboard
--logdir` uses - and checks that every given scalar tag has exactly the given steps and
every given image tag holds a decodable PNG.

    check_tensorboard.py runs/example --scalar loss/d --scalar quality/fid \
        --image samples --steps 0,10,20 [--image-size 56x28] [--value loss/d@10=0.6]

Prints one summary line. Exit status: 0 all good, 1 a mismatch, 2 bad arguments,
3 the `tensorboard` package is not importable (pip install tensorboard).
"""

import argparse
import math
import os
import struct
import sys
import zlib

EXIT_MISMATCH = 1
EXIT_NO_TENSORBOARD = 3

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Samples per pixel of each PNG colour type.
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_size(data):
    """Fully decodes a non-interlaced PNG's structure; returns (width, height) or raises ValueError."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("no PNG signature")
    pos, idat, header = len(PNG_SIGNATURE), [], None
    while True:
        if pos + 8 > len(data):
            raise ValueError("PNG ends before IEND")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc_bytes = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc_bytes) != 4:
            raise ValueError("PNG chunk %r truncated" % kind)
        if zlib.crc32(kind + body) != struct.unpack(">I", crc_bytes)[0]:
            raise ValueError("PNG chunk %r CRC mismatch" % kind)
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if colour not in PNG_CHANNELS:
        raise ValueError("PNG colour type %d unknown" % colour)
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError("PNG pixel data does not inflate: %s" % e)
    if interlace == 0:
        row = 1 + (width * PNG_CHANNELS[colour] * depth + 7) // 8
        if len(raw) != height * row:
            raise ValueError("PNG pixel data is %d bytes, expected %d" % (len(raw), height * row))
    return width, height


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="the run folder holding events.out.tfevents.* files")
    p.add_argument("--scalar", action="append", default=[], metavar="TAG",
                   help="a scalar tag that must be there (repeatable)")
    p.add_argument("--image", action="append", default=[], metavar="TAG",
                   help="an image tag that must be there with a decodable PNG (repeatable)")
    p.add_argument("--steps", default=None, metavar="N,N,...",
                   help="the exact steps every --scalar tag must have")
    p.add_argument("--image-size", default=None, metavar="WxH",
                   help="the width x height every --image must have")
    p.add_argument("--value", action="append", default=[], metavar="TAG@STEP=VALUE",
                   help="a scalar value that must be there (repeatable; relative tolerance 1e-5)")
    args = p.parse_args()
    try:
        args.steps = None if args.steps is None else [int(s) for s in args.steps.split(",") if s.strip()]
        if args.image_size is not None:
            w, h = args.image_size.lower().split("x")
            args.image_size = (int(w), int(h))
        values = []
        for v in args.value:
            tag_step, value = v.rsplit("=", 1)
            tag, step = tag_step.rsplit("@", 1)
            values.append((tag, int(step), float(value)))
        args.value = values
    except ValueError:
        p.error("bad --steps, --image-size or --value")
    if not (args.scalar or args.image or args.value):
        p.error("nothing to check: give --scalar, --image or --value")
    return args


def main():
    args = parse_args()
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        print("SKIP: tensorboard is not importable (%s); pip install tensorboard" % e)
        return EXIT_NO_TENSORBOARD

    if not os.path.isdir(args.dir):
        print("FAIL: %s is not a folder" % args.dir)
        return EXIT_MISMATCH
    files = sorted(f for f in os.listdir(args.dir) if "tfevents" in f)
    if not files:
        print("FAIL: no tfevents file in %s" % args.dir)
        return EXIT_MISMATCH

    acc = EventAccumulator(args.dir, size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    scalar_tags, image_tags = set(tags.get("scalars", [])), set(tags.get("images", []))
    problems = []

    for tag in args.scalar:
        if tag not in scalar_tags:
            problems.append("scalar %s missing (scalars: %s)" % (tag, sorted(scalar_tags)))
            continue
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        if args.steps is not None and steps != args.steps:
            problems.append("scalar %s has steps %s, expected %s" % (tag, steps, args.steps))
        bad = [e.step for e in events if not math.isfinite(e.value)]
        if bad:
            problems.append("scalar %s is not finite at steps %s" % (tag, bad))

    for tag, step, want in args.value:
        got = [e.value for e in acc.Scalars(tag) if e.step == step] if tag in scalar_tags else []
        if len(got) != 1 or not math.isclose(got[0], want, rel_tol=1e-5, abs_tol=1e-6):
            problems.append("scalar %s at step %d is %s, expected %g" % (tag, step, got, want))

    images = []
    for tag in args.image:
        if tag not in image_tags:
            problems.append("image %s missing (images: %s)" % (tag, sorted(image_tags)))
            continue
        if not acc.Images(tag):
            problems.append("image %s has no events" % tag)
        for e in acc.Images(tag):
            try:
                size = png_size(e.encoded_image_string)
            except (ValueError, struct.error) as err:
                problems.append("image %s at step %d: %s" % (tag, e.step, err))
                continue
            if size != (e.width, e.height):
                problems.append("image %s at step %d: event says %dx%d, PNG is %dx%d"
                                % (tag, e.step, e.width, e.height, size[0], size[1]))
            if args.image_size is not None and size != args.image_size:
                problems.append("image %s at step %d is %dx%d, expected %dx%d"
                                % ((tag, e.step) + size + args.image_size))
            images.append("%s@%d %dx%d" % (tag, e.step, size[0], size[1]))

    if problems:
        print("FAIL: %s: %s" % (args.dir, "; ".join(problems)))
        return EXIT_MISMATCH
    steps = "" if args.steps is None else " at steps %s" % ",".join(map(str, args.steps))
    print("OK: %s (%d file%s): scalars %s%s; %d value%s matched; images %s (PNG decoded)"
          % (args.dir, len(files), "" if len(files) == 1 else "s", ",".join(args.scalar) or "-",
             steps, len(args.value), "" if len(args.value) == 1 else "s", ", ".join(images) or "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
