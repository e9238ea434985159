/* keyconfig.c - import-key configurations (placeholder; being written). */
#include "err.h"
