/*
 * compiler.h - attribute macros and cleanup helpers shared by every module.
 *
 * STYLE.md C8/C9/C21: attributes hide behind macros so clang and gcc both build;
 * _cleanup_ + TAKE_PTR make ownership transfers visible.
 */
#pragma once

#include <stdlib.h>

#define SKR_NODISCARD    __attribute__((warn_unused_result))
#define SKR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SKR_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define SKR_API          __attribute__((visibility("default")))
#define SKR_UNUSED       __attribute__((unused))

#define _cleanup_(f) __attribute__((cleanup(f)))

/*
 * A gcc -fanalyzer false positive: SKR_ANALYZER_IGNORE("-Wanalyzer-<kind>") before the smallest
 * scope the report points at, SKR_ANALYZER_END after it, with a comment saying why the report is
 * false. Never used for a real finding. clang (the fuzz build) has no such warnings.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define SKR_PRAGMA_(x) _Pragma(#x)
#define SKR_ANALYZER_IGNORE(kind)                                                                  \
    _Pragma("GCC diagnostic push") SKR_PRAGMA_(GCC diagnostic ignored kind)
#define SKR_ANALYZER_END _Pragma("GCC diagnostic pop")
#else
#define SKR_ANALYZER_IGNORE(kind)
#define SKR_ANALYZER_END
#endif

/* Moves ownership out of a cleanup-guarded local (systemd TAKE_PTR). */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) take_ptr_tmp_ = (p);                                                         \
        (p) = NULL;                                                                                \
        take_ptr_tmp_;                                                                             \
    })

/* Moves a cleanup-guarded struct out, leaving the original zeroed (systemd TAKE_STRUCT). */
#define TAKE_STRUCT(s)                                                                             \
    ({                                                                                             \
        __typeof__(s) take_struct_tmp_ = (s);                                                      \
        (s) = (__typeof__(s)){ 0 };                                                                \
        take_struct_tmp_;                                                                          \
    })

#define DEFINE_CLEANUP(type, fn)                                                                   \
    static inline void fn##p(type *p)                                                              \
    {                                                                                              \
        if (*p != NULL) {                                                                          \
            fn(*p);                                                                                \
        }                                                                                          \
    }

static inline void
freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

#define SKR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
