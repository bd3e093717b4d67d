#!/usr/bin/env python3
"""Renders a terminal capture with ANSI colours (tmux capture-pane -e -p) to a PNG.

Usage: ansi_to_png.py CAPTURE.ans OUT.png
Needs Pillow and the DejaVu Sans Mono font (Debian: fonts-dejavu-core).
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
SIZE = 15
BG = (24, 25, 33)
FG = (210, 214, 224)
# The 16 ANSI colours, in a calm dark palette.
PALETTE = [
    (40, 42, 54), (230, 90, 90), (120, 200, 120), (220, 190, 90),
    (100, 150, 230), (190, 120, 220), (90, 200, 210), (200, 204, 214),
    (100, 104, 120), (255, 120, 120), (150, 230, 150), (240, 220, 120),
    (140, 180, 255), (220, 150, 250), (130, 230, 240), (250, 250, 250),
]


def color256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return (level, level, level)


def parse(text):
    """Yields rows of (char, fg, bg, bold)."""
    rows = []
    fg, bg, bold, reverse = None, None, False, False
    for line in text.split("\n"):
        row = []
        for part in re.split(r"(\x1b\[[0-9;]*m)", line):
            if part.startswith("\x1b["):
                codes = [int(c) if c else 0 for c in part[2:-1].split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, bold, reverse = None, None, False, False
                    elif c == 1:
                        bold = True
                    elif c == 22:
                        bold = False
                    elif c == 7:
                        reverse = True
                    elif c == 27:
                        reverse = False
                    elif 30 <= c <= 37:
                        fg = PALETTE[c - 30]
                    elif 90 <= c <= 97:
                        fg = PALETTE[c - 90 + 8]
                    elif 40 <= c <= 47:
                        bg = PALETTE[c - 40]
                    elif 100 <= c <= 107:
                        bg = PALETTE[c - 100 + 8]
                    elif c == 39:
                        fg = None
                    elif c == 49:
                        bg = None
                    elif c in (38, 48) and i + 1 < len(codes):
                        if codes[i + 1] == 5 and i + 2 < len(codes):
                            value = color256(codes[i + 2])
                            i += 2
                        elif codes[i + 1] == 2 and i + 4 < len(codes):
                            value = tuple(codes[i + 2:i + 5])
                            i += 4
                        else:
                            value = None
                        if c == 38:
                            fg = value
                        else:
                            bg = value
                    i += 1
            else:
                for ch in part:
                    f, b = fg or FG, bg or BG
                    if reverse:
                        f, b = b, f
                    row.append((ch, f, b, bold))
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def main():
    source, target = sys.argv[1], sys.argv[2]
    rows = parse(open(source, encoding="utf-8").read())
    regular = ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", SIZE)
    bold = ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", SIZE)
    width = int(regular.getlength("M"))
    height = int(SIZE * 1.35)
    cols = max(len(r) for r in rows)
    pad = 12
    image = Image.new("RGB", (cols * width + 2 * pad, len(rows) * height + 2 * pad), BG)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, (ch, fg, bg, is_bold) in enumerate(row):
            left, top = pad + x * width, pad + y * height
            if bg != BG:
                draw.rectangle([left, top, left + width, top + height], fill=bg)
            if ch != " ":
                draw.text((left, top + 2), ch, font=bold if is_bold else regular, fill=fg)
    image.save(target)


if __name__ == "__main__":
    main()
