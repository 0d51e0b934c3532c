#pragma once
/// Small file helpers: atomic writes, existence checks with clear errors.
#include <functional>
#include <string>

namespace graft::io {

/// Runs write(tmp_path) to produce a file, then renames it onto path, so readers
/// never see a half-written file. On any exception the temp file is removed and
/// the exception propagates; path is left as it was.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);

/// Writes text to path atomically.
void write_text_atomically(const std::string& path, const std::string& text);

/// Throws graft::Error naming `what` and path when path does not exist or cannot be read.
void require_readable(const std::string& path, const std::string& what);

/// Creates dir (and parents); throws graft::Error naming it on failure.
void ensure_dir(const std::string& dir);

/// The data cache: $GRAFT_DATA, else $XDG_CACHE_HOME/graft, else $HOME/.cache/graft.
std::string data_cache_dir();

}  // namespace graft::io
