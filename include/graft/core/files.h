#pragma once
/// Small file helpers: atomic, durable writes; existence checks with clear errors;
/// cleaning temp files left by killed processes.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace graft {

/// Runs write(tmp_path) to produce a file, then makes it durable (fsync of the file),
/// renames it onto path and fsyncs the folder, so readers never see a half-written
/// file and a power cut leaves the old or the new file. On any exception the temp
/// file is removed and the exception propagates; path is left as it was.
/// The temp file is path + ".tmp." + the process id (see clean_stale_temp_files).
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);

/// Writes bytes to path atomically and durably with checked POSIX writes: a full disk
/// (ENOSPC), a file-size limit (EFBIG) or any other failure throws graft::Error naming
/// path and the reason, with the temp file removed and path untouched.
void write_bytes_atomically(const std::string& path, const std::string& bytes);

/// Receives a file's bytes piece by piece; returns false once a write has failed (later
/// pieces are dropped, and write_chunks_atomically then throws).
using ChunkSink = std::function<bool(const void* data, size_t n)>;

/// write_bytes_atomically for a file produced in pieces: produce(sink) hands every piece to
/// sink, which writes it straight to the temp file (no copy of the whole file in memory).
/// A failed write throws graft::Error naming path and the reason after produce returns; an
/// exception from produce propagates. Either way the temp file is removed, path untouched.
void write_chunks_atomically(const std::string& path, const std::function<void(const ChunkSink&)>& produce);

/// Writes text to path atomically (write_bytes_atomically).
void write_text_atomically(const std::string& path, const std::string& text);

/// Publishes the existing file `from` also as path, atomically (write_atomically): as a hard
/// link where the file system allows one, else as a copy.
void link_or_copy_atomically(const std::string& from, const std::string& path);

/// fsync of a file or folder; throws graft::Error naming it on failure.
void fsync_path(const std::string& path);

/// Reads a whole file; throws graft::Error naming `what` and path when it is missing,
/// a folder or unreadable.
std::string read_file_bytes(const std::string& path, const std::string& what);

/// Removes the temp files "NAME.tmp.PID" in dir (not recursive) whose process PID no
/// longer runs (a kill -9 during a write leaves them). Files of live processes,
/// including this one, are kept. Returns the paths removed.
std::vector<std::string> clean_stale_temp_files(const std::string& dir);

/// One CSV field per RFC 4180: returned as is unless it holds a comma, a double quote,
/// CR or LF, in which case it is enclosed in double quotes with inner quotes doubled.
std::string csv_field(const std::string& s);

/// Throws graft::Error naming `what` and path when path does not exist or cannot be read.
void require_readable(const std::string& path, const std::string& what);

/// Creates dir (and parents); throws graft::Error naming it on failure.
void ensure_dir(const std::string& dir);

/// The data cache: $GRAFT_DATA, else $XDG_CACHE_HOME/graft, else $HOME/.cache/graft.
std::string data_cache_dir();

}  // namespace graft
