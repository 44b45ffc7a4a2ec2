# Until the queue module lands on main, code written against the declared
# queue API (hardening tests, chaos, fuzz) links to stubs (tests/queue_stubs.h)
# that answer SHMCHAN_ENOTSUP. The stubs are compiled only while the library
# itself lacks the queue functions, so the real ones are never shadowed.
# Remove this file and tests/queue_stubs.h once the queue is on main.
get_filename_component(SHMCHAN_QUEUE_STUBS_CORE ${CMAKE_CURRENT_LIST_DIR}/../src/core ABSOLUTE)
function(shmchan_queue_stubs target)
  set(core ${SHMCHAN_QUEUE_STUBS_CORE})
  file(GLOB sources ${core}/queue*.c)
  foreach(f ${sources})
    file(STRINGS ${f} hit REGEX "^shmchan_queue_send\\(")
    if(hit)
      return()
    endif()
  endforeach()
  target_compile_definitions(${target} PRIVATE SHMCHAN_QUEUE_STUBS)
endfunction()
