#pragma once
/// Integrity of libtorch archives (checkpoints, classifiers, TorchScript files), which
/// are zip files: every record carries a CRC32 in the zip's central directory, but
/// libtorch's reader is built without checking them, so a bit-flipped file would load.
/// graft checks them itself before handing the bytes to libtorch.
#include <c10/core/Device.h>
#include <c10/util/Optional.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace graft::io {

/// Checks a zip archive held in memory: end-of-central-directory record (zip64
/// included), every central-directory entry matching its local header, records inside
/// the file, and each record's CRC32 (stored records directly; deflated ones, such as
/// libtorch's code files, after inflating them). Returns the number of records.
/// Throws graft::Error "NAME is damaged: ..." naming the first bad record.
int64_t verify_zip(const void* data, size_t size, const std::string& name);

/// The content of `record` (e.g. "data.pkl") in a libtorch archive held in memory, whose
/// records all sit under one top folder ("archive/data.pkl"); nullopt when there is none.
/// Checks the directory and sizes as verify_zip does (not the CRCs); throws the same errors.
std::optional<std::string> zip_record(const void* data, size_t size, const std::string& record,
                                      const std::string& name);

/// Reads path, verifies it with verify_zip and loads it into `in`. Throws graft::Error
/// naming the file (`what` says what it should be, e.g. "checkpoint") when it is
/// missing, damaged (CRC mismatch, truncated) or not a libtorch archive.
/// `device`: where the archive's tensors go (default: the device each was saved from).
void load_archive_verified(const std::string& path, torch::serialize::InputArchive& in, const std::string& what,
                           c10::optional<c10::Device> device = c10::nullopt);

/// Serialises `out` straight into a temp file with write_chunks_atomically (checked
/// writes, fsync, rename, fsync of the folder). A full disk throws graft::Error with
/// the temp file removed; nothing is thrown from a destructor.
void save_archive_atomically(const std::string& path, torch::serialize::OutputArchive& out);

}  // namespace graft::io
