# Run after linking graft (cmake -DEXE=... -DNM=... [-DDRY=1: keep the file] -P check_libstdcxx.cmake): fails when the
# executable defines libstdc++'s own internals (std::locale::_Impl and friends). That happens
# when it is linked by a compiler whose libstdc++ is newer than the system one libtorch uses
# (seen with a GCC 13 under /opt on a GPU image): graft's copies then interpose on the
# library's, and every TorchScript load aborts with "free(): invalid pointer".
execute_process(COMMAND "${NM}" -C --defined-only "${EXE}" OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(WARNING "graft: could not list the symbols of ${EXE} with ${NM}; the libstdc++ check was skipped")
  return()
endif()
string(REGEX MATCH "std::locale::_Impl::[A-Za-z_~]+" hit "${syms}")
if(hit)
  if(NOT DRY)
    file(REMOVE "${EXE}")
  endif()
  message(FATAL_ERROR "graft: the executable defines libstdc++ internals (${hit}): it was linked by a compiler "
          "whose libstdc++ differs from the one libtorch uses, and every TorchScript load would abort. "
          "Configure with the system compiler: CXX=/usr/bin/g++ cmake ... (docs/ARCHITECTURE.md, \"Current libtorch\")")
endif()
