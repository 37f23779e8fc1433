# ctest entries fuzz.<target> in the main (gcc) build, one per tests/fuzz/fuzz_*.c.
# The fuzzers themselves are a clang project of their own (CMakeLists.txt here):
# each entry runs tools/fuzz, which configures and builds it into
# <main build>/fuzz when needed, then fuzzes the target for 1 s: a
# regression run over the corpus and a little beyond (the long runs are
# tools/fuzz TARGET SECONDS). So a fresh clone needs nothing beyond tools/test.
file(GLOB _outpost_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
foreach(_src ${_outpost_fuzz_sources})
  get_filename_component(_stem ${_src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _target ${_stem})
  add_test(NAME fuzz.${_target} COMMAND ${CMAKE_SOURCE_DIR}/tools/fuzz ${_target} 1)
  # Not RUN_SERIAL: tools/test runs the fuzzers two at a time with the unit
  # and protocol tests, which measure nothing but themselves, and the timing
  # tests after them, one at a time (their builds take turns: tools/fuzz's lock).
  set_tests_properties(fuzz.${_target} PROPERTIES ENVIRONMENT "OUTPOST_BUILD=${CMAKE_BINARY_DIR}"
                       TIMEOUT 300 LABELS fuzz)
endforeach()
