# Included by CMakeLists.txt with -DTORCH_ATTN_FUZZ=ON (clang): libFuzzer targets for the parsers
# of outside bytes, built with ASan and UBSan, instead of the addon. scripts/fuzz.sh drives it.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "torch-attn: the fuzzers need clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
endif()
set(TORCH_ATTN_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
add_library(torch_attn_parsers STATIC
  native/common/errors.cc native/common/files.cc native/models/pth_reader.cc native/data/decode.cc)
target_include_directories(torch_attn_parsers PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/native" ${TURBOJPEG_INCLUDE_DIR} ${PNG_INCLUDE_DIRS})
target_compile_options(torch_attn_parsers PUBLIC ${TORCH_ATTN_TORCH_CXX_FLAGS} ${TORCH_ATTN_SANITIZERS})
target_compile_options(torch_attn_parsers PRIVATE -fsanitize=fuzzer-no-link)
target_link_libraries(torch_attn_parsers PUBLIC ${TORCH_LIBRARIES} ${TURBOJPEG_LIBRARY} ${PNG_LIBRARIES})
foreach(target pth image)
  add_executable(fuzz_${target} fuzz/fuzz_${target}.cc)
  target_compile_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${target} PRIVATE ${TORCH_ATTN_SANITIZERS} -fsanitize=fuzzer)
  target_link_libraries(fuzz_${target} PRIVATE torch_attn_parsers)
endforeach()
