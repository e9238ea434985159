/* kdf.c - key derivation (placeholder; being written). */
#include "err.h"
