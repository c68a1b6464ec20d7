/* compiler.h: attribute macros used across the code base. */
#ifndef SVC_UTIL_COMPILER_H
#define SVC_UTIL_COMPILER_H

#define SVC_MUSTCHECK         __attribute__((warn_unused_result))
#define SVC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SVC_UNUSED            __attribute__((unused))
#define SVC_ARRAY_LEN(a)      (sizeof(a) / sizeof((a)[0]))

#endif
