// The little of ISO BMFF (MP4, ISO/IEC 14496-12) that a live fan-out needs: top-level boxes read
// one at a time from a fragmented MP4 stream, and whether a movie fragment starts with a sync
// sample (a key frame). Everything it reads is checked: a malformed box is a clear error.
#ifndef BYTECAST_EXAMPLES_LIVE_MEDIA_MP4_BOXES_HPP
#define BYTECAST_EXAMPLES_LIVE_MEDIA_MP4_BOXES_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

namespace mp4 {

/// A malformed or truncated box: the feed cannot go on.
struct bad_box : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::uint32_t be32(std::span<const std::byte> b, std::size_t at) {
  if (at + 4 > b.size()) throw bad_box("box too short");
  return (std::uint32_t(b[at]) << 24) | (std::uint32_t(b[at + 1]) << 16) | (std::uint32_t(b[at + 2]) << 8) |
         std::uint32_t(b[at + 3]);
}

inline std::uint64_t be64(std::span<const std::byte> b, std::size_t at) {
  return (std::uint64_t(be32(b, at)) << 32) | be32(b, at + 4);
}

inline std::string fourcc(std::span<const std::byte> b, std::size_t at) {
  if (at + 4 > b.size()) throw bad_box("box too short");
  return {reinterpret_cast<const char*>(b.data() + at), 4};
}

/// A box header: its type, its whole size and the size of the header itself (8, or 16 with a
/// 64-bit size). `available` is how many bytes there are from the box's start: a header that
/// does not fit yet gives nullopt.
struct box_header {
  std::string type;
  std::uint64_t size = 0;
  std::size_t header_size = 8;
};

inline std::optional<box_header> read_header(std::span<const std::byte> b) {
  if (b.size() < 8) return std::nullopt;
  box_header h{fourcc(b, 4), be32(b, 0), 8};
  if (h.size == 1) { // the size is the 64-bit field after the type
    if (b.size() < 16) return std::nullopt;
    h.size = be64(b, 8);
    h.header_size = 16;
  } else if (h.size == 0) {
    throw bad_box("a '" + h.type + "' box that extends to the end of the file: not a live stream");
  }
  if (h.size < h.header_size) throw bad_box("a '" + h.type + "' box smaller than its header");
  return h;
}

/// sample_flags (ISO/IEC 14496-12 8.8.3.1): sample_is_non_sync_sample is bit 16.
inline bool is_sync_sample(std::uint32_t sample_flags) { return (sample_flags & 0x00010000u) == 0; }

/// Whether the first sample of the first track fragment of a `moof` box is a sync sample: the
/// trun's first_sample_flags, else its first sample's own flags, else the tfhd's default flags.
/// Without any of them, false (a viewer aligned to sync points then waits for a fragment that
/// says so).
inline bool starts_with_sync_sample(std::span<const std::byte> moof) {
  const auto h = read_header(moof);
  if (!h || h->type != "moof" || h->size != moof.size()) throw bad_box("not a whole moof box");
  std::optional<std::uint32_t> default_flags;
  for (std::size_t at = h->header_size; at < moof.size();) {
    const auto child = read_header(moof.subspan(at));
    if (!child || child->size > moof.size() - at) throw bad_box("a truncated box inside moof");
    if (child->type == "traf") {
      const auto traf = moof.subspan(at, child->size);
      for (std::size_t t = child->header_size; t < traf.size();) {
        const auto box = read_header(traf.subspan(t));
        if (!box || box->size > traf.size() - t) throw bad_box("a truncated box inside traf");
        const auto body = traf.subspan(t + box->header_size, box->size - box->header_size);
        const std::uint32_t flags = be32(body, 0) & 0xffffff; // version (8 bits), flags (24)
        if (box->type == "tfhd" && (flags & 0x20) != 0) {
          // track_ID, then the optional fields in order: base_data_offset (0x01, 8 bytes),
          // sample_description_index (0x02), default duration (0x08), default size (0x10).
          std::size_t off = 8 + ((flags & 0x01) ? 8 : 0) + ((flags & 0x02) ? 4 : 0) + ((flags & 0x08) ? 4 : 0) +
                            ((flags & 0x10) ? 4 : 0);
          default_flags = be32(body, off);
        } else if (box->type == "trun") {
          // sample_count, data_offset (0x01), first_sample_flags (0x04), then per sample:
          // duration (0x100), size (0x200), flags (0x400), composition offset (0x800).
          if (be32(body, 4) == 0) return false;
          std::size_t off = 8 + ((flags & 0x01) ? 4 : 0);
          if (flags & 0x04) return is_sync_sample(be32(body, off));
          off += ((flags & 0x100) ? 4 : 0) + ((flags & 0x200) ? 4 : 0);
          if (flags & 0x400) return is_sync_sample(be32(body, off));
          return default_flags && is_sync_sample(*default_flags);
        }
        t += box->size;
      }
      return false; // the first traf had no trun
    }
    at += child->size;
  }
  return false;
}

} // namespace mp4

#endif // BYTECAST_EXAMPLES_LIVE_MEDIA_MP4_BOXES_HPP
