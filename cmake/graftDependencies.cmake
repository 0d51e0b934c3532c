# graft's third-party dependencies, found the same way by graft's own build and by
# projects that find_package(graft) (graftConfig.cmake includes this file): libgraft
# is a static library, so its private dependencies must be linkable by consumers too.
include(CMakeFindDependencyMacro)
find_dependency(Torch)
find_dependency(nlohmann_json)
find_dependency(ZLIB)
find_dependency(Threads)
# FreeType draws the digits of 'graft data make syndigits' from installed fonts.
find_dependency(Freetype)

# OpenCV's CMake config comes only with the full libopencv-dev; the three codec
# packages graft needs ship headers and libraries, so find those directly.
if(NOT TARGET graft_deps::opencv)
  find_path(GRAFT_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
  set(_graft_opencv_libs)
  foreach(_c core imgproc imgcodecs)
    find_library(GRAFT_OPENCV_${_c}_LIB opencv_${_c})
    if(NOT GRAFT_OPENCV_${_c}_LIB)
      set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
      set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "graft needs libopencv_${_c} (Debian: libopencv-${_c}-dev)")
      return()
    endif()
    list(APPEND _graft_opencv_libs ${GRAFT_OPENCV_${_c}_LIB})
  endforeach()
  add_library(graft_deps::opencv INTERFACE IMPORTED)
  set_target_properties(graft_deps::opencv PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${GRAFT_OPENCV_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${_graft_opencv_libs}")
endif()

if(NOT TARGET graft_deps::liblinear)
  find_path(GRAFT_LIBLINEAR_INCLUDE_DIR linear.h)
  find_library(GRAFT_LIBLINEAR_LIB linear)
  if(NOT GRAFT_LIBLINEAR_LIB OR NOT GRAFT_LIBLINEAR_INCLUDE_DIR)
    set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
    set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "graft needs LIBLINEAR (Debian: liblinear-dev)")
    return()
  endif()
  add_library(graft_deps::liblinear INTERFACE IMPORTED)
  set_target_properties(graft_deps::liblinear PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${GRAFT_LIBLINEAR_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${GRAFT_LIBLINEAR_LIB}")
endif()
