# Helpers for native unit tests (doctest) and libFuzzer targets.
#
# ckpt_native_test(NAME SOURCES a.cc b.cc LIBS lib1 lib2)
#   Builds a doctest executable and registers it with ctest.
#
# ckpt_fuzz_target(NAME SOURCE fuzz.cc LIBS lib1 CORPUS dir)
#   With CKPT_FUZZ: builds NAME as a libFuzzer binary (clang only).
#   Always: builds NAME_replay, which runs the same entry point over every
#   file of the corpus directory without a fuzzing engine, and registers it
#   with ctest, so the corpus is replayed in every CI run.
find_path(DOCTEST_INCLUDE_DIR doctest/doctest.h REQUIRED)

function(ckpt_native_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${CMAKE_SOURCE_DIR}/native/common/test/doctest_main.cc ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${DOCTEST_INCLUDE_DIR})
  target_link_libraries(${name} PRIVATE ${T_LIBS} pthread)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 600)
endfunction()

function(ckpt_fuzz_target name)
  cmake_parse_arguments(F "" "SOURCE;CORPUS" "LIBS" ${ARGN})
  add_executable(${name}_replay ${CMAKE_SOURCE_DIR}/native/common/test/fuzz_replay_main.cc ${F_SOURCE})
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS} pthread)
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_replay PROPERTIES TIMEOUT 600)
  if(CKPT_FUZZ)
    add_executable(${name} ${F_SOURCE})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${F_LIBS} pthread)
    set_property(GLOBAL APPEND PROPERTY CKPT_FUZZERS "${name}|${F_CORPUS}")
  endif()
endfunction()

# Writes build-dir/fuzzers.txt ("binary|corpus" per line) for scripts/native-test.sh.
function(ckpt_write_fuzzer_list)
  get_property(list GLOBAL PROPERTY CKPT_FUZZERS)
  set(text "")
  foreach(entry IN LISTS list)
    string(APPEND text "${entry}\n")
  endforeach()
  file(WRITE ${CMAKE_BINARY_DIR}/fuzzers.txt "${text}")
endfunction()
