/* cmd_diagnose.c - `skr diagnose` (placeholder; being written). */
#include "cli.h"

int
cmd_diagnose(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("", "skr diagnose: not built yet");
}
