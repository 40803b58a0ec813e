"""Real files for the upload tests, made on the spot: pictures by Pillow, videos and sounds by the
ffmpeg that imageio-ffmpeg ships. Nothing is checked in."""

import struct
import subprocess
import zlib
from pathlib import Path

import imageio_ffmpeg
from PIL import Image

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F


def picture(
    path: Path,
    size: tuple[int, int] = (640, 480),
    color: tuple[int, int, int] = (220, 30, 30),
    *,
    fmt: str | None = None,
    gps: bool = False,
    orientation: int | None = None,
) -> Path:
    """A solid picture; with `gps`, EXIF naming a camera and a place (as a phone's photo does)."""
    image = Image.new("RGB", size, color)
    # A white block in the top-left corner, so a rotation shows.
    image.paste((255, 255, 255), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    if gps:
        exif[MAKE] = "PhoneMaker"
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    if orientation:
        exif[ORIENTATION] = orientation
    options = {"exif": exif.tobytes()} if (gps or orientation) else {}
    image.save(path, fmt or {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix], **options)
    return path


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A square PNG, `side` pixels a side, in a few dozen KiB: zeros compress to almost nothing."""
    row = b"\0" + b"\0" * ((side + 7) // 8)  # filter byte + one bit per pixel
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    body = chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def video(
    path: Path,
    seconds: float = 3,
    size: tuple[int, int] = (320, 240),
    *,
    color: str | None = None,
    location: bool = False,
) -> Path:
    """An H.264 clip with a sound track (a test pattern, or a solid colour), MP4 or MOV by suffix."""
    picture_source = (
        f"color=c={color}:size={size[0]}x{size[1]}:rate=12:duration={seconds}"
        if color
        else f"testsrc2=size={size[0]}x{size[1]}:rate=12:duration={seconds}"
    )
    extra = ["-metadata", "location=+48.8584+002.2945/"] if location else []
    _ffmpeg(
        "-f", "lavfi", "-i", picture_source, "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", *extra,
        "-f", "mov" if path.suffix == ".mov" else "mp4", str(path),
    )  # fmt: skip
    return path


def sound(path: Path, seconds: float = 3) -> Path:
    """A tone as MP3, WAV or M4A, by suffix."""
    codec = {".mp3": ["-c:a", "libmp3lame"], ".wav": [], ".m4a": ["-c:a", "aac"]}[path.suffix]
    muxer = {".mp3": "mp3", ".wav": "wav", ".m4a": "ipod"}[path.suffix]
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=550:duration={seconds}", *codec, "-f", muxer, str(path))
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, capture_output=True, timeout=60)


def probe(path: Path | str) -> str:
    """What ffmpeg says about a file (ffprobe is not shipped)."""
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def frame_color(path: Path | str, at: float) -> tuple[int, int, int]:
    """The mean colour of the frame `at` seconds into a video."""
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1", "-vf", "scale=16:16",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    return tuple(sum(p[c] for p in pixels) // len(pixels) for c in range(3))  # type: ignore[return-value]
