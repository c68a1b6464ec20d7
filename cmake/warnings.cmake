# Interface targets carrying the project's warning set and sanitizer flags.
add_library(svc_warnings INTERFACE)
target_compile_options(svc_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
  -Wmissing-prototypes -Wold-style-definition -Wvla -Wcast-qual
  -Wnull-dereference -Wdouble-promotion -Wundef -Wno-unused-parameter
  $<$<BOOL:${SVC_WERROR}>:-Werror>)
target_compile_definitions(svc_warnings INTERFACE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)

add_library(svc_sanitize INTERFACE)
if(SVC_SANITIZE)
  target_compile_options(svc_sanitize INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(svc_sanitize INTERFACE -fsanitize=address,undefined)
elseif(SVC_TSAN)
  target_compile_options(svc_sanitize INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(svc_sanitize INTERFACE -fsanitize=thread)
endif()
