/* diagnose.c - the release flow step by step (placeholder; being written). */
#include "err.h"
