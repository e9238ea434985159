/* cmd_key.c - `skr key create|import|get|policy` (placeholder; being written). */
#include "cli.h"

int
cmd_key(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("", "skr key: not built yet");
}
