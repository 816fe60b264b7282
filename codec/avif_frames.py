"""The size of the AV1 frames inside an AVIF file, read from their headers, without decoding.

An AVIF file declares its picture's size in an ``ispe`` box, and that is what Pillow reports;
but the AV1 decoder allocates for the frame size in the AV1 bitstream itself, which the
``ispe`` box does not bind (libavif checks neither against the other before decoding). A
146-byte file could declare 16x16 and carry a 12000x12000 frame: 519 MiB decoded. So the
upload check (codec/images.py) reads what the decoder will be given:

- every ``av01`` item of the file (the picture, its alpha plane, grid tiles, thumbnails), found
  through ``iinf`` and ``iloc`` (file or ``idat`` extents), and the first sample of every
  ``av01`` track (animated AVIF: only the first frame is decoded);
- in each, the AV1 sequence header (max_frame_width/height) and each frame header, far enough
  to see ``frame_size_override_flag``: a frame that sets it may be as large as the sequence
  header's field widths allow (2^frame_width_bits x 2^frame_height_bits), and is counted so.

``largest_frame`` returns the largest such size (by area); ValueError for anything it cannot
read (a truncated box, an item in another file, no sequence header), which the caller refuses:
a file the decoder could still decode without this check telling its frame size is not accepted.
"""

from __future__ import annotations

import struct

OBU_SEQUENCE_HEADER = 1
OBU_FRAME_HEADER = 3
OBU_FRAME = 6
_KEY_FRAME = 0
_SWITCH_FRAME = 3
_SELECT = 2  # seq_force_screen_content_tools / seq_force_integer_mv: "chosen per frame"


class _Bits:
    """Big-endian bit reader (the AV1 spec's f(n) and uvlc())."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def f(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("AV1 header truncated")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.f(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.f(zeros) + (1 << zeros) - 1


class _Sequence:
    """The fields of an AV1 sequence header that frame sizes depend on."""

    def __init__(self, payload: memoryview) -> None:
        b = _Bits(payload)
        b.f(3)  # seq_profile
        b.f(1)  # still_picture
        self.reduced = b.f(1)
        self.decoder_model_info = 0
        self.equal_picture_interval = 0
        self.presentation_time_bits = 0
        if self.reduced:
            b.f(5)  # seq_level_idx[0]
        else:
            if b.f(1):  # timing_info_present_flag
                b.f(32)  # num_units_in_display_tick
                b.f(32)  # time_scale
                self.equal_picture_interval = b.f(1)
                if self.equal_picture_interval:
                    b.uvlc()  # num_ticks_per_picture_minus_1
                self.decoder_model_info = b.f(1)
                if self.decoder_model_info:
                    buffer_delay_bits = b.f(5) + 1
                    b.f(32)  # num_units_in_decoding_tick
                    b.f(5)  # buffer_removal_time_length_minus_1
                    self.presentation_time_bits = b.f(5) + 1
            initial_display_delay = b.f(1)
            for _ in range(b.f(5) + 1):  # operating points
                b.f(12)  # operating_point_idc
                if b.f(5) > 7:  # seq_level_idx
                    b.f(1)  # seq_tier
                if self.decoder_model_info and b.f(1):  # decoder_model_present_for_this_op
                    b.f(buffer_delay_bits)  # decoder_buffer_delay
                    b.f(buffer_delay_bits)  # encoder_buffer_delay
                    b.f(1)  # low_delay_mode_flag
                if initial_display_delay and b.f(1):
                    b.f(4)  # initial_display_delay_minus_1
        self.width_bits = b.f(4) + 1
        self.height_bits = b.f(4) + 1
        self.max_width = b.f(self.width_bits) + 1
        self.max_height = b.f(self.height_bits) + 1
        self.frame_id_bits = 0
        self.force_screen_content_tools = _SELECT
        self.force_integer_mv = _SELECT
        if not self.reduced:
            if b.f(1):  # frame_id_numbers_present_flag
                delta_bits = b.f(4) + 2
                self.frame_id_bits = b.f(3) + 1 + delta_bits
            b.f(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
            b.f(4)  # enable_interintra_compound, masked_compound, warped_motion, dual_filter
            if b.f(1):  # enable_order_hint
                b.f(2)  # enable_jnt_comp, enable_ref_frame_mvs
            if not b.f(1):  # seq_choose_screen_content_tools
                self.force_screen_content_tools = b.f(1)
            if self.force_screen_content_tools > 0 and not b.f(1):  # seq_choose_integer_mv
                self.force_integer_mv = b.f(1)

    def frame_overrides_size(self, payload: memoryview) -> bool:
        """Whether a frame header sets ``frame_size_override_flag`` (the uncompressed header,
        read up to that flag)."""
        if self.reduced:
            return False
        b = _Bits(payload)
        if b.f(1):  # show_existing_frame: shows a frame decoded before, no new size
            return False
        frame_type = b.f(2)
        show_frame = b.f(1)
        if show_frame and self.decoder_model_info and not self.equal_picture_interval:
            b.f(self.presentation_time_bits)  # temporal_point_info
        if not show_frame:
            b.f(1)  # showable_frame
        if not (frame_type == _SWITCH_FRAME or (frame_type == _KEY_FRAME and show_frame)):
            b.f(1)  # error_resilient_mode
        b.f(1)  # disable_cdf_update
        screen_content = b.f(1) if self.force_screen_content_tools == _SELECT else self.force_screen_content_tools
        if screen_content and self.force_integer_mv == _SELECT:
            b.f(1)  # force_integer_mv
        b.f(self.frame_id_bits)  # current_frame_id
        return frame_type == _SWITCH_FRAME or bool(b.f(1))

    def largest(self, overridden: bool) -> tuple[int, int]:
        if overridden:
            return 1 << self.width_bits, 1 << self.height_bits
        return self.max_width, self.max_height


def _leb128(data: memoryview, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos >= len(data):
            raise ValueError("AV1 OBU size truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos
    raise ValueError("AV1 OBU size too long")


def frames_in(data: memoryview) -> list[tuple[int, int]]:
    """The largest size of each sequence's frames in a run of AV1 OBUs (an item or a sample)."""
    sizes = []
    sequence, overridden, pos = None, False, 0
    while pos < len(data):
        header = data[pos]
        if header & 0x80:
            raise ValueError("AV1 OBU forbidden bit set")
        obu_type, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        pos += 1 + extension
        if has_size:
            size, pos = _leb128(data, pos)
        else:
            size = len(data) - pos
        if pos + size > len(data):
            raise ValueError("AV1 OBU truncated")
        payload = data[pos : pos + size]
        pos += size
        if obu_type == OBU_SEQUENCE_HEADER:
            if sequence is not None:
                sizes.append(sequence.largest(overridden))
            sequence, overridden = _Sequence(payload), False
        elif obu_type in (OBU_FRAME_HEADER, OBU_FRAME):
            if sequence is None:
                raise ValueError("AV1 frame before any sequence header")
            overridden = overridden or sequence.frame_overrides_size(payload)
    if sequence is None:
        raise ValueError("no AV1 sequence header")
    sizes.append(sequence.largest(overridden))
    return sizes


def _boxes(data: memoryview, start: int, end: int):
    """(type, content start, end) of each ISOBMFF box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError("box truncated")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("box truncated")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def _uint(data: memoryview, pos: int, size: int, end: int) -> tuple[int, int]:
    if pos + size > end:
        raise ValueError("box truncated")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def _item_types(data: memoryview, start: int, end: int) -> dict[int, bytes]:
    """iinf: item ID -> item type (infe version 2 and 3; older entries have no type)."""
    version = data[start]
    _, pos = _uint(data, start + 4, 2 if version == 0 else 4, end)
    types = {}
    for kind, s, e in _boxes(data, pos, end):
        if kind != b"infe" or e - s < 4 or data[s] < 2:
            continue
        item_id, p = _uint(data, s + 4, 2 if data[s] == 2 else 4, e)
        _, p = _uint(data, p, 2, e)  # item_protection_index
        types[item_id] = bytes(data[p : p + 4])
    return types


def _item_data(data: memoryview, start: int, end: int, idat: tuple[int, int] | None, wanted: set[int]) -> list[memoryview]:
    """iloc: the bytes of each wanted item (its extents joined)."""
    version = data[start]
    pos = start + 4
    if pos + 2 > end:
        raise ValueError("iloc truncated")
    offset_size, length_size = data[pos] >> 4, data[pos] & 15
    base_size, index_size = data[pos + 1] >> 4, (data[pos + 1] & 15 if version in (1, 2) else 0)
    count, pos = _uint(data, pos + 2, 4 if version == 2 else 2, end)
    found = []
    for _ in range(count):
        item_id, pos = _uint(data, pos, 4 if version == 2 else 2, end)
        method = 0
        if version in (1, 2):
            method, pos = _uint(data, pos, 2, end)
            method &= 15
        reference, pos = _uint(data, pos, 2, end)
        base, pos = _uint(data, pos, base_size, end)
        extents, pos = _uint(data, pos, 2, end)
        parts = []
        for _ in range(extents):
            pos += index_size
            offset, pos = _uint(data, pos, offset_size, end)
            length, pos = _uint(data, pos, length_size, end)
            parts.append((base + offset, length))
        if item_id not in wanted:
            continue
        if reference != 0 or method not in (0, 1) or (method == 1 and idat is None):
            raise ValueError("AV1 item stored elsewhere")
        source_start, source_end = (0, len(data)) if method == 0 else idat
        chunks = []
        for offset, length in parts:
            first = source_start + offset
            last = source_end if length == 0 else first + length
            if first > source_end or last > source_end:
                raise ValueError("AV1 item outside the file")
            chunks.append(data[first:last])
        found.append(chunks[0] if len(chunks) == 1 else memoryview(b"".join(chunks)))
    return found


def _first_samples(data: memoryview, start: int, end: int) -> list[memoryview]:
    """The first sample of each av01 track in moov."""
    samples = []
    for kind, s, e in _boxes(data, start, end):
        if kind != b"trak":
            continue
        stbl: tuple[int, int] | None = (s, e)
        for name in (b"mdia", b"minf", b"stbl"):
            stbl = _child(data, *stbl, name) if stbl else None
        if stbl is not None:
            stsd = _child(data, *stbl, b"stsd")
            if stsd is None or _child(data, stsd[0] + 8, stsd[1], b"av01") is None:
                continue
            stsz, stco, co64 = (_child(data, *stbl, k) for k in (b"stsz", b"stco", b"co64"))
            if stsz is None or (stco or co64) is None:
                raise ValueError("AV1 track without sample tables")
            size, p = _uint(data, stsz[0] + 4, 4, stsz[1])
            count, p = _uint(data, p, 4, stsz[1])
            if count == 0:
                continue
            if size == 0:
                size, _ = _uint(data, p, 4, stsz[1])
            table = stco or co64
            chunks, p = _uint(data, table[0] + 4, 4, table[1])
            if chunks == 0:
                raise ValueError("AV1 track without chunks")
            offset, _ = _uint(data, p, 4 if stco else 8, table[1])
            if offset + size > len(data):
                raise ValueError("AV1 sample outside the file")
            samples.append(data[offset : offset + size])
    return samples


def largest_frame(file: bytes) -> tuple[int, int]:
    """The largest (by area) frame size the AV1 decoder can be given for this AVIF file: every
    av01 item, and the first sample of every av01 track. ValueError if it cannot be told."""
    try:
        return _largest_frame(memoryview(file))
    except (IndexError, struct.error) as exc:
        raise ValueError("AVIF structure truncated") from exc


def _largest_frame(data: memoryview) -> tuple[int, int]:
    runs: list[memoryview] = []
    for kind, s, e in _boxes(data, 0, len(data)):
        if kind == b"meta":
            iinf, iloc, idat = (_child(data, s + 4, e, k) for k in (b"iinf", b"iloc", b"idat"))
            if iinf is None or iloc is None:
                raise ValueError("AVIF meta without iinf or iloc")
            wanted = {i for i, t in _item_types(data, *iinf).items() if t == b"av01"}
            runs += _item_data(data, *iloc, idat, wanted)
        elif kind == b"moov":
            runs += _first_samples(data, s, e)
    if not runs:
        raise ValueError("no AV1 picture data")
    return max((size for run in runs for size in frames_in(run)), key=lambda wh: wh[0] * wh[1])
