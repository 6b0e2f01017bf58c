# Imports the static llama.cpp libraries that scripts/bootstrap.sh built into a cache prefix
# outside the repo. Exposes one target, isartor_llama.
if(NOT ISARTOR_LLAMA_PREFIX)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/scripts/bootstrap.sh prefix
                  OUTPUT_VARIABLE ISARTOR_LLAMA_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
if(NOT EXISTS "${ISARTOR_LLAMA_PREFIX}/.complete")
  message(FATAL_ERROR "llama.cpp not found in '${ISARTOR_LLAMA_PREFIX}': run scripts/bootstrap.sh first")
endif()
find_package(OpenMP REQUIRED COMPONENTS C CXX)

add_library(isartor_llama INTERFACE)
target_include_directories(isartor_llama SYSTEM INTERFACE ${ISARTOR_LLAMA_PREFIX}/include)
# Order matters for static linking: llama, then ggml front end, then its backends, then base.
set(_llama_libs llama ggml ggml-cpu ggml-base)
foreach(lib IN LISTS _llama_libs)
  set(path ${ISARTOR_LLAMA_PREFIX}/lib/lib${lib}.a)
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "missing ${path}")
  endif()
  target_link_libraries(isartor_llama INTERFACE ${path})
endforeach()
target_link_libraries(isartor_llama INTERFACE OpenMP::OpenMP_CXX OpenMP::OpenMP_C Threads::Threads ${CMAKE_DL_LIBS} m)
set(ISARTOR_LLAMA_SERVER ${ISARTOR_LLAMA_PREFIX}/bin/llama-server CACHE INTERNAL "")
