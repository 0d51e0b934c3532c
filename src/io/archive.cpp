#include "graft/io/archive.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <zlib.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <cstring>

#include "graft/core/check.h"
#include "graft/core/files.h"

namespace graft::io {
namespace {

uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t crc_of(const unsigned char* p, uint64_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    c = crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

struct Directory {
  uint64_t entries = 0, offset = 0, size = 0;
};

Directory find_directory(const unsigned char* d, size_t n, const std::string& name) {
  GRAFT_CHECK(n >= 22, name, " is damaged: too short to be an archive (", n, " bytes)");
  size_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0;
  size_t eocd = n - 22;
  while (le(d + eocd, 4) != 0x06054b50) {
    GRAFT_CHECK(eocd > lowest, name, " is damaged or truncated: no end-of-archive record (not a complete zip/libtorch file)");
    --eocd;
  }
  Directory dir{le(d + eocd + 10, 2), le(d + eocd + 16, 4), le(d + eocd + 12, 4)};
  if (dir.entries == 0xFFFF || dir.offset == 0xFFFFFFFF || dir.size == 0xFFFFFFFF) {
    GRAFT_CHECK(eocd >= 20 && le(d + eocd - 20, 4) == 0x07064b50, name, " is damaged: zip64 locator missing");
    uint64_t z = le(d + eocd - 20 + 8, 8);
    GRAFT_CHECK(n >= 56 && z <= n - 56 && le(d + z, 4) == 0x06064b50, name, " is damaged: zip64 end record missing");
    dir = {le(d + z + 32, 8), le(d + z + 48, 8), le(d + z + 40, 8)};
  }
  GRAFT_CHECK(dir.offset <= n && dir.size <= n - dir.offset, name, " is damaged: the directory lies outside the file");
  GRAFT_CHECK(dir.entries > 0 && dir.entries <= dir.size / 46, name, " is damaged: implausible record count ",
              dir.entries);
  return dir;
}

// Replaces 0xFFFFFFFF sizes/offsets by their zip64 extra-field values.
void apply_zip64(const unsigned char* extra, size_t len, uint64_t& usize, uint64_t& csize, uint64_t& off) {
  for (size_t i = 0; i + 4 <= len;) {
    uint64_t id = le(extra + i, 2), sz = le(extra + i + 2, 2);
    if (i + 4 + sz > len) return;
    if (id == 1) {
      size_t p = i + 4;
      for (uint64_t* v : {&usize, &csize, &off})
        if (*v == 0xFFFFFFFF && p + 8 <= i + 4 + sz) {
          *v = le(extra + p, 8);
          p += 8;
        }
      return;
    }
    i += 4 + sz;
  }
}

// Inflates a deflated (method 8) record of declared size usize; throws when the data
// are corrupt or do not inflate to exactly usize bytes. Deflate expands at most about
// 1032:1, so a larger declared size is refused before allocating.
std::string inflate_record(const unsigned char* src, uint64_t csize, uint64_t usize, const std::string& name,
                           const std::string& rec) {
  GRAFT_CHECK(usize / 1032 <= csize + 1, name, " is damaged: record '", rec, "' claims ", usize,
              " bytes from ", csize, " compressed");
  // Compressed records are small code and metadata files; tensors are stored.
  GRAFT_CHECK(csize < (1u << 30) && usize < (1u << 30), name, ": compressed record '", rec, "' is too large to check");
  std::string out(usize, '\0');
  z_stream z{};
  GRAFT_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, "zlib: inflateInit2 failed");
  z.next_in = const_cast<Bytef*>(src);
  z.avail_in = static_cast<uInt>(std::min<uint64_t>(csize, 1u << 30));
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(std::min<uint64_t>(usize, 1u << 30));
  int rc = inflate(&z, Z_FINISH);
  uint64_t produced = z.total_out;
  inflateEnd(&z);
  GRAFT_CHECK(rc == Z_STREAM_END && produced == usize, name, " is damaged: record '", rec,
              "' does not decompress to its declared size");
  return out;
}

}  // namespace

namespace {

struct Record {
  std::string name;
  uint64_t method, crc, csize, usize, start;  ///< start: offset of its bytes in the file
};

// Walks the central directory, checking every entry against its local header and the file's
// bounds, and hands each record to visit until it returns false. Returns the entry count.
int64_t walk_zip(const unsigned char* d, size_t n, const std::string& name,
                 const std::function<bool(const Record&)>& visit) {
  auto dir = find_directory(d, n, name);
  uint64_t pos = dir.offset, end = dir.offset + dir.size;
  for (uint64_t e = 0; e < dir.entries; ++e) {
    GRAFT_CHECK(pos + 46 <= end && le(d + pos, 4) == 0x02014b50, name, " is damaged: directory entry ", e,
                " is corrupt");
    uint64_t method = le(d + pos + 10, 2), crc = le(d + pos + 16, 4), csize = le(d + pos + 20, 4),
             usize = le(d + pos + 24, 4), nlen = le(d + pos + 28, 2), xlen = le(d + pos + 30, 2),
             clen = le(d + pos + 32, 2), off = le(d + pos + 42, 4);
    GRAFT_CHECK(pos + 46 + nlen + xlen + clen <= end, name, " is damaged: directory entry ", e, " is truncated");
    std::string rec(reinterpret_cast<const char*>(d + pos + 46), nlen);
    apply_zip64(d + pos + 46 + nlen, xlen, usize, csize, off);
    GRAFT_CHECK((method == 0 && csize == usize) || method == 8, name, " is damaged: record '", rec,
                "' has an unknown compression method or inconsistent sizes");
    GRAFT_CHECK(off <= n && n - off >= 30 && le(d + off, 4) == 0x04034b50, name, " is damaged: record '", rec,
                "' has no valid local header");
    uint64_t lnlen = le(d + off + 26, 2), lxlen = le(d + off + 28, 2);
    GRAFT_CHECK(lnlen == nlen && n - off - 30 >= lnlen && std::memcmp(d + off + 30, rec.data(), nlen) == 0, name,
                " is damaged: record '", rec, "' is named differently in its local header");
    uint64_t start = off + 30 + lnlen + lxlen;
    GRAFT_CHECK(start <= n && csize <= n - start, name, " is damaged or truncated: record '", rec,
                "' extends past the end of the file");
    if (!visit(Record{rec, method, crc, csize, usize, start})) break;
    pos += 46 + nlen + xlen + clen;
  }
  return static_cast<int64_t>(dir.entries);
}

std::string record_bytes(const unsigned char* d, const Record& r, const std::string& name) {
  if (r.method == 0) return std::string(reinterpret_cast<const char*>(d + r.start), r.usize);
  return inflate_record(d + r.start, r.csize, r.usize, name, r.name);
}

}  // namespace

int64_t verify_zip(const void* data, size_t n, const std::string& name) {
  auto d = static_cast<const unsigned char*>(data);
  return walk_zip(d, n, name, [&](const Record& r) {
    uint32_t actual = 0;
    if (r.method == 0) {
      actual = crc_of(d + r.start, r.usize);
    } else {
      std::string plain = inflate_record(d + r.start, r.csize, r.usize, name, r.name);
      actual = crc_of(reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
    }
    GRAFT_CHECK(actual == r.crc, name, " is damaged: record '", r.name,
                "' fails its CRC32 check (bit rot, a partial copy or an edited file); use an earlier copy or retrain");
    return true;
  });
}

std::optional<std::string> zip_record(const void* data, size_t n, const std::string& record, const std::string& name) {
  auto d = static_cast<const unsigned char*>(data);
  std::optional<std::string> found;
  walk_zip(d, n, name, [&](const Record& r) {
    auto slash = r.name.find('/');
    if (slash == std::string::npos || r.name.compare(slash + 1, std::string::npos, record) != 0) return true;
    found = record_bytes(d, r, name);
    return false;
  });
  return found;
}

void load_archive_verified(const std::string& path, torch::serialize::InputArchive& in, const std::string& what,
                           c10::optional<c10::Device> device) {
  std::string bytes = read_file_bytes(path, what);
  verify_zip(bytes.data(), bytes.size(), what + " '" + path + "'");
  try {
    in.load_from(bytes.data(), bytes.size(), device);
  } catch (const c10::Error& e) {
    GRAFT_FAIL(what, " '", path, "' cannot be read (", brief(e.what_without_backtrace()), ")");
  } catch (const std::exception& e) {  // the TorchScript compiler's errors: damaged code inside
    GRAFT_FAIL(what, " '", path, "' cannot be read (", brief(e.what()), ")");
  }
}

void save_archive_atomically(const std::string& path, torch::serialize::OutputArchive& out) {
  // Streamed to the temp file. The sink never reports a short write to libtorch (whose
  // writer would then throw from its destructor); write_chunks_atomically throws afterwards.
  write_chunks_atomically(path, [&out](const ChunkSink& sink) {
    out.save_to([&sink](const void* p, size_t n) {
      sink(p, n);
      return n;
    });
  });
}

}  // namespace graft::io
