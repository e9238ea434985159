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

/* Moves ownership out of a cleanup-guarded local (systemd TAKE_PTR). */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) take_ptr_tmp_ = (p);                                                         \
        (p) = NULL;                                                                                \
        take_ptr_tmp_;                                                                             \
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
